--! Previous: sha1:b18f83200ad51088ea48eb0b5a775e7c07e01a5e
--! Hash: sha1:b44d55a11ffab3f446a14abd8517d43e6bfe85c5
--! Message: reporting-incidents

-- 000017 reporting.incidents: the tenants' incidents for DBAs, so that a report can find an
-- incident by its title through the incidents' title index, not by reading every
-- 'incident.created' entry of the log (3.7 s cold in a tenant of 2M entries, for the README's
-- "every change to one incident" query). Long texts (description, root cause, lessons learned)
-- stay out: they are in the incident's audit entries for whoever needs them.

create view reporting.incidents as
  select t.slug as tenant_slug, i.tenant_id, i.id as incident_id, i.title, i.severity, i.status, i.nis2_enabled,
         i.created_at, u.email as created_by, i.updated_at, i.deleted_at
  from app_public.incidents i
  join app_public.tenants t on t.id = i.tenant_id
  left join app_public.users u on u.id = i.created_by;
comment on view reporting.incidents is
  'Every incident of every tenant (soft-deleted ones too, with deleted_at): title, severity, status, NIS2 reporting, who created it and when.';
grant select on reporting.incidents to :DATABASE_REPORTING;
