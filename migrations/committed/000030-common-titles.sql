--! Previous: sha1:2a5805b383d3887b6f0ed63b64749342df4acdbc
--! Hash: sha1:a0fd5571d8ef46b18cbdad042a6db49d80d77845
--! Message: common-titles

-- 000030 Common titles: a search that matches many incident titles learns it from a sample.
--
-- A search also finds the entries of up to 50 incidents whose current title matches (renamed
-- since): app_private.audit_search_alternates looked for up to 51 of them through the trigram
-- index of titles, which reads the whole tenant's list under each trigram: ~7 ms for a word of
-- many titles in a tenant of 100,000 incidents, on every search, only to learn that there are more
-- than 50 (and so none is added). It now first reads the tenant's 1,000 newest incidents: when
-- more than 50 of them match, there are more than 50 in all, and the index is not asked. What a
-- search matches does not change.
-- Runs as the session's login: the function is on the audit path (see CONVENTIONS.md).

set local role none;

create or replace function app_private.audit_search_alternates(p_tenant uuid, p_pattern text, out actors text[], out incidents uuid[])
language sql stable set search_path = pg_catalog as $$
  select array(select u.email from app_public.memberships m join app_public.users u on u.id = m.user_id
               where m.tenant_id = p_tenant and u.name ilike p_pattern and u.email not ilike p_pattern limit 20),
         case
           when (select count(*) from (
                   select 1 from (select i.title from app_public.incidents i
                                  where i.tenant_id = p_tenant and i.deleted_at is null
                                  order by i.created_at desc limit 1000) s
                   where s.title ilike p_pattern limit 51) c) > 50 then '{}'::uuid[]
           else (select case when count(*) <= 50 then coalesce(array_agg(i.id), '{}') else '{}' end
                 from (select i.id from app_public.incidents i
                       where i.tenant_id = p_tenant and i.title ilike p_pattern limit 51) i)
         end
$$;

set local role :DATABASE_OWNER;
