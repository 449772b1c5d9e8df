--! Previous: sha1:ebdaad474c7c96f4099c9b62a07481d99fbbcfba
--! Hash: sha1:175d12437e361759825fda90c555980139a56dc9
--! Message: alternates-strong-trigrams

-- 000100 A word whose only trigrams are of one-letter words looks incidents up as a word too
-- short for trigrams.
--
-- The page's search also finds the entries of incidents whose current title holds the word
-- (app_private.audit_search_alternates). A word with trigrams looks them up through the titles'
-- trigram index; one without (000062), among the tenant's titles when it has at most 1,000, else
-- among its 1,000 newest. "g: r" (the milestones' "Early warning: R…") has one trigram, "  r",
-- the start of a word beginning with r: nearly every title has one, so the index gave 16,667 of the
-- 2,000,000-entry bench tenant's 100,000 titles to be checked (~13 ms of each page of that search,
-- which in the 300-entry tenant costs nothing). Only trigrams with two letters or digits count now.
-- Runs as the session's login: the function is on the audit path (see CONVENTIONS.md).

set local role none;

create or replace function app_private.audit_search_alternates(p_tenant uuid, p_pattern text, OUT actors text[], OUT incidents uuid[])
 RETURNS record
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog'
AS $function$
  select array(select u.email from app_public.memberships m join app_public.users u on u.id = m.user_id
               where m.tenant_id = p_tenant and u.name ilike p_pattern and u.email not ilike p_pattern limit 20),
         case
           when (select count(*) from (
                   select 1 from (select i.title from app_public.incidents i
                                  where i.tenant_id = p_tenant and i.deleted_at is null
                                  order by i.created_at desc limit 1000) s
                   where s.title ilike p_pattern limit 51) c) > 50 then '{}'::uuid[]
           -- A pattern with trigrams: the titles' trigram index. (000100) Those of a word of one
           -- letter or digit ("  r" of "g: r") do not count: nearly every title has one, and the
           -- index gave them all to be checked (16,667 titles of the bench tenant's 100,000, ~13 ms).
           when p_pattern ~ '[[:alnum:]]{3}'
                or exists (select 1 from pg_catalog.unnest(app_private.audit_pattern_trigrams(p_pattern)) t
                           where t ~ '[[:alnum:]]{2}') then
             (select case when count(*) <= 50 then coalesce(array_agg(i.id), '{}') else '{}' end
              from (select i.id from app_public.incidents i
                    where i.tenant_id = p_tenant and i.title ilike p_pattern limit 51) i)
           -- Without (000062): that index would be read whole. The tenant's titles themselves, when
           -- they are at most 1,000 …
           when (select count(*) from (select 1 from app_public.incidents i where i.tenant_id = p_tenant limit 1001) n) <= 1000 then
             (select case when count(*) <= 50 then coalesce(array_agg(i.id), '{}') else '{}' end
              from (select i.id from app_public.incidents i
                    where i.tenant_id = p_tenant and (i.title || '') ilike p_pattern limit 51) i)
           -- … else its 1,000 newest.
           else
             (select case when count(*) <= 50 then coalesce(array_agg(s.id), '{}') else '{}' end
              from (select i.id, i.title from app_public.incidents i
                    where i.tenant_id = p_tenant and i.deleted_at is null
                    order by i.created_at desc limit 1000) s
              where s.title ilike p_pattern)
         end
$function$;

set local role :DATABASE_OWNER;
