--! Previous: sha1:6704580d43ada1152dce0eab5c6545361de316e1
--! Hash: sha1:ce572041f962a208fa9107c693ce2fae90a5ba65
--! Message: connection-actor-and-pattern

-- 000091 GraphQL's actorLabel with an actorContains the person's address does not hold is
-- answered at once: nothing matches.
--
-- With both, audit_connection_ids (000076) handed audit_find the person alone and checked the
-- pattern on each entry found. A person whose address does not hold the pattern (actorLabel
-- fatima@…, actorContains "chen@") had every entry of theirs read, 26 at a time, and each one
-- refused: more than 5 s (the request's limit) for the 235,716 entries of a person of the
-- 2,000,000-entry bench tenant. Whether the pattern matches the person is one comparison; when it
-- does, the pattern rules out nothing the person does not.
--
-- Runs as the session's login: the function is on the audit path (see CONVENTIONS.md).

set local role none;

create or replace function app_hidden.audit_connection_ids(
  p_filter jsonb, p_cursor_at timestamptz, p_cursor_id bigint, p_ascending boolean, p_limit int)
returns bigint[]
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid;
  v_find jsonb := p_filter - 'actorPattern' - 'labelPattern' - 'actionPrefix' - 'actions';
  v_exact text[] := array[app_private.audit_filter_sql(p_filter)];
  v_actions text[];
  v_actors text[];
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
  r record;
begin
  -- (000076) one lookup of the reader's membership, as audit_find
  v_tenant := app_hidden.audit_log_tenant();
  if v_tenant is null or p_limit < 1 then
    return '{}';
  end if;

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
    -- (000091) With a person too: the pattern matches all of their entries or none.
    if p_filter->>'actor' is not null then
      if not coalesce(p_filter->>'actor' ilike p_filter->>'actorPattern', false) then
        return '{}';
      end if;
    else
      v_actors := app_hidden.audit_actors_matching(p_filter->>'actorPattern');
      if cardinality(v_actors) = 0 then
        return '{}';
      elsif cardinality(v_actors) > 16 then
        -- Many actors: without a word it is the page's search for the pattern (its candidates are
        -- the entries of those actors, and of actions and names that match too).
        if p_filter->>'labelPattern' is null then
          v_find := v_find || jsonb_build_object('pattern', p_filter->>'actorPattern');
        end if;
      else
        -- (000076) A few: their entries alone, in one walk (audit_find's "actors"; before, a
        -- stream of its own for each person, and each walked the names again: 58-126 ms for a word
        -- with a pattern matching 2-16 people in the 2,000,000-entry bench tenant).
        v_find := v_find || jsonb_build_object('actors', to_jsonb(v_actors));
      end if;
    end if;
  end if;
  if p_filter->>'labelPattern' is not null then
    v_exact := v_exact || format('e.resource_label ilike %L', p_filter->>'labelPattern');
    -- the resource name only: no people, incidents, actions or actors to look up (000034)
    v_find := v_find || jsonb_build_object('pattern', p_filter->>'labelPattern', 'fields', 'label');
  end if;

  -- audit_find's matches in order, checked exactly, until p_limit or their end.
  v_at := p_cursor_at;
  v_id := p_cursor_id;
  v_got := 0;
  loop
    v_asked := p_limit - v_got;
    v_batch := '{}';
    v_rows := 0;
    v_marker := false;
    for r in select * from app_hidden.audit_find(v_find, v_at, v_id, p_ascending, v_asked) loop
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

  return array(
    select u.id from unnest(v_ats, v_ids) u(at, id)
    order by case when p_ascending then u.at end, case when p_ascending then u.id end,
             u.at desc, u.id desc
    limit p_limit);
end;
$$;

comment on function app_hidden.audit_connection_ids(jsonb, timestamptz, bigint, boolean, int) is
  'Capture numbers of the next entries of the current tenant matching a GraphQL auditLogs condition, after the cursor, in (occurred_at, id) order: what the API''s search conditions read. An actor pattern matching a few people reads them in one stream (migration 000076); with a person, it is checked once against them (000091).';


set local role :DATABASE_OWNER;
