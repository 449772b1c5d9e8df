--! Previous: sha1:cef9999403f6a96b8bdc4935c9da77f40d4ce55f
--! Hash: sha1:b74427358610e0ef0259d6ad915922bb0efd7bb3
--! Message: audit-search

-- 000003 The Audit Log page's search box: one case-insensitive substring search over action,
-- actor and resource label, served by a trigram index that leads with the tenant.
-- Queries must use exactly this expression (src/web/pages/audit-log.ts does).
create index audit_log_tenant_search_trgm_idx on app_public.audit_log
  using gin (tenant_id, (action || ' ' || actor_label || ' ' || coalesce(resource_label, '')) gin_trgm_ops);
