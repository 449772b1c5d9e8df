--! Previous: sha1:f7b5634de90d39a5839eb0ab539bcd190b304830
--! Hash: sha1:f9a5ddebabc20bd18eea772eb0d0e0ea2267cdf1
--! Message: actors-skip-scan

-- 000021 Actors skip scan: the distinct actors of a tenant's log in one index probe each.
--
-- app_hidden.audit_actors_matching (GraphQL `actorContains`) walked the (tenant, actor) index from
-- one actor to the next, but took the tenant from a CTE joined to the log: PostgreSQL could not
-- use the index's order for a tenant it only learns from a join, so each step read and sorted
-- every entry of the tenant (4 s for 2M entries, ten actors). The tenant is now a parameter of
-- each step (a scalar subquery), and each step is one index probe (~4 ms in all).
-- Runs as the session's login: the function reads the log as a SECURITY DEFINER function, so it
-- is on the audit path.

set local role none;

create or replace function app_hidden.audit_actors_matching(p_pattern text) returns text[]
language sql stable security definer set search_path = pg_catalog as $$
  with recursive actors(actor) as (
    (select e.actor_label from app_public.audit_log e
     where e.tenant_id = (select app_public.current_tenant_id() where app_hidden.audit_log_readable())
     order by e.actor_label limit 1)
    union all
    select (select e.actor_label from app_public.audit_log e
            where e.tenant_id = (select app_public.current_tenant_id() where app_hidden.audit_log_readable())
              and e.actor_label > a.actor
            order by e.actor_label limit 1)
    from actors a where a.actor is not null
  )
  select coalesce(array_agg(actor), '{}') from actors where actor ilike p_pattern
$$;

set local role :DATABASE_OWNER;
