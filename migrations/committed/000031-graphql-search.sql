--! Previous: sha1:a0fd5571d8ef46b18cbdad042a6db49d80d77845
--! Hash: sha1:8862d1f009f296cacd47fd6a619e579c670488dd
--! Message: graphql-search

-- 000031 GraphQL search: `auditLogs` conditions that search are answered like the page's search.
--
-- `auditLogs(condition: { actorContains | resourceLabelContains | actionPrefix })` is one keyset
-- query of PostgreSQL: the planner either walks the log in order and tests each entry (a rare
-- actor in a 2M-entry tenant: 1-5 s), or collects every match first and sorts them (a common word:
-- over a second). Neither knows where the page starts. The API's default order is now the page's,
-- newest first by (occurred_at, id), and for those conditions the server asks this function for
-- the next page's entries after the cursor; the query then reads just those. The function goes
-- through app_hidden.audit_find (one ordered index range per actor or action, the names of the
-- day for a word), so it reads a bounded part of the log per page whatever its size.
-- Runs as the session's login: the functions read the log as SECURITY DEFINER functions, so they
-- are on the audit path (see CONVENTIONS.md).

set local role none;

/** The tenant's actions that match a LIKE prefix pattern (escaped prefix, then %), one index probe per action. */
create or replace function app_private.audit_actions_like(p_tenant uuid, p_prefix text) returns text[]
language sql stable set search_path = pg_catalog as $$
  with recursive actions(action) as (
    (select e.action from app_public.audit_log e
     where e.tenant_id = p_tenant
       -- from the prefix itself: the pattern without its final % and its escapes (\_ is _)
       and e.action ~>=~ regexp_replace(left(p_prefix, -1), '\\(.)', '\1', 'g')
     order by e.action using ~<~ limit 1)
    union all
    select (select e.action from app_public.audit_log e
            where e.tenant_id = p_tenant and e.action ~>~ a.action
            order by e.action using ~<~ limit 1)
    from actions a where a.action is not null
  )
  select coalesce(array_agg(a.action order by a.action), '{}') from actions a
  where a.action is not null and a.action like p_prefix
$$;

comment on function app_private.audit_actions_like(uuid, text) is
  'The tenant''s actions matching a LIKE prefix pattern (`incident.%`), by a skip scan of the action index.';

/**
 * Capture numbers of the next p_limit entries of the current tenant that match the filter, in
 * (occurred_at, id) order (descending unless p_ascending), strictly after the cursor when given.
 * The filter is audit_find's (actions, actor, incident, from, to, …) plus what GraphQL's
 * conditions add: actorPattern (ILIKE on the actor), labelPattern (ILIKE on the resource label)
 * and actionPrefix (LIKE on the action). Every key is checked exactly; audit_find supplies the
 * candidates in order, one stream per matching actor (merged) when an actor pattern matches a few.
 */
create or replace function app_hidden.audit_connection_ids(
  p_filter jsonb, p_cursor_at timestamptz, p_cursor_id bigint, p_ascending boolean, p_limit int)
returns bigint[]
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid;
  v_find jsonb := p_filter - 'actorPattern' - 'labelPattern' - 'actionPrefix' - 'actions';
  v_exact text[] := array[app_private.audit_filter_sql(p_filter)];
  v_actions text[];
  v_actors text[] := array[null::text];
  v_ats timestamptz[] := '{}';
  v_ids bigint[] := '{}';
  v_batch bigint[];
  v_batch_ats timestamptz[];
  v_asked int;
  v_got int;
  v_rows int;
  v_marker boolean;
  v_at timestamptz;
  v_id bigint;
  v_stream jsonb;
  a text;
  r record;
begin
  if not app_hidden.audit_log_readable() or p_limit < 1 then
    return '{}';
  end if;
  v_tenant := app_public.current_tenant_id();

  if p_filter ? 'actions' then
    select array_agg(distinct x) into v_actions from jsonb_array_elements_text(p_filter->'actions') x;
  end if;
  if p_filter->>'actionPrefix' is not null then
    v_actions := case when v_actions is null then app_private.audit_actions_like(v_tenant, p_filter->>'actionPrefix')
                      else array(select x from unnest(v_actions) x where x like p_filter->>'actionPrefix') end;
    v_exact := v_exact || format('e.action like %L', p_filter->>'actionPrefix');
  end if;
  if v_actions is not null then
    if cardinality(v_actions) = 0 then
      return '{}';
    end if;
    v_find := v_find || jsonb_build_object('actions', to_jsonb(v_actions));
    v_exact := v_exact || format('e.action = any (%L::text[])', v_actions);
  end if;
  if p_filter->>'actorPattern' is not null then
    v_exact := v_exact || format('e.actor_label ilike %L', p_filter->>'actorPattern');
    if p_filter->>'actor' is null then
      v_actors := app_hidden.audit_actors_matching(p_filter->>'actorPattern');
      if cardinality(v_actors) = 0 then
        return '{}';
      elsif cardinality(v_actors) > 16 then
        -- Many actors: one stream. Without a word it is the page's search for the pattern (its
        -- candidates are the entries of those actors, and of actions and names that match too).
        v_actors := array[null::text];
        if p_filter->>'labelPattern' is null then
          v_find := v_find || jsonb_build_object('pattern', p_filter->>'actorPattern');
        end if;
      end if;
    end if;
  end if;
  if p_filter->>'labelPattern' is not null then
    v_exact := v_exact || format('e.resource_label ilike %L', p_filter->>'labelPattern');
    v_find := v_find || jsonb_build_object('pattern', p_filter->>'labelPattern');
  end if;

  -- Each stream: audit_find's matches in order, checked exactly, until p_limit or its end.
  foreach a in array v_actors loop
    v_stream := case when a is null then v_find else v_find || jsonb_build_object('actor', a) end;
    v_at := p_cursor_at;
    v_id := p_cursor_id;
    v_got := 0;
    loop
      v_asked := p_limit - v_got;
      v_batch := '{}';
      v_rows := 0;
      v_marker := false;
      for r in select * from app_hidden.audit_find(v_stream, v_at, v_id, p_ascending, v_asked) loop
        v_at := r.occurred_at;
        v_id := r.id;
        if r.scan_end then
          v_marker := true;
        else
          v_rows := v_rows + 1;
          v_batch := v_batch || r.id;
        end if;
      end loop;
      if v_rows > 0 then
        execute format(
          'select coalesce(array_agg(e.occurred_at), ''{}''), coalesce(array_agg(e.id), ''{}'')
           from app_public.audit_log e where e.tenant_id = %L::uuid and e.id = any ($1) and %s',
          v_tenant, array_to_string(v_exact, ' and '))
          into v_batch_ats, v_batch using v_batch;
        v_ats := v_ats || v_batch_ats;
        v_ids := v_ids || v_batch;
        v_got := v_got + cardinality(v_batch);
      end if;
      -- Enough, or the stream ended (fewer matches than asked and no place to go on from).
      exit when v_got >= p_limit or (not v_marker and v_rows < v_asked);
    end loop;
  end loop;

  return array(
    select u.id from unnest(v_ats, v_ids) u(at, id)
    order by case when p_ascending then u.at end, case when p_ascending then u.id end,
             u.at desc, u.id desc
    limit p_limit);
end;
$$;

comment on function app_hidden.audit_connection_ids(jsonb, timestamptz, bigint, boolean, int) is
  'Capture numbers of the next entries of the current tenant matching a GraphQL auditLogs condition, after the cursor, in (occurred_at, id) order: what the API''s search conditions read.';

revoke all on function app_private.audit_actions_like(uuid, text) from public;
revoke all on function app_hidden.audit_connection_ids(jsonb, timestamptz, bigint, boolean, int) from public;
grant execute on function app_hidden.audit_connection_ids(jsonb, timestamptz, bigint, boolean, int) to :DATABASE_VISITOR;

set local role :DATABASE_OWNER;
