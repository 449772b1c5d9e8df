--! Previous: sha1:520ee82e394c2a964000fa215954528228e3fb86
--! Hash: sha1:5360203cf94091a7a6a3b36786092d2c73a37442
--! Message: space-bit

-- 000070 The space has a bit: the one "}" had, "}" sharing the bit of "{".
--
-- A pattern of spaces and characters without a bit (" ", "  a") had no character to look the days
-- up by and no key to skip months by: GraphQL's resourceLabelContains " " with an action its names
-- never go with (evidence.uploaded: file names without a space) read every day's names to find
-- none, 3.2-4.1 s in the 2,000,000-entry bench tenant, and its totalCount with an action or an
-- actor ran out of time (5 s). The mask's 64 bits were all taken, so "}" now shares the bit of "{"
-- (a shared bit can only let a day or month through that holds neither) and the space takes bit 61.
-- (Sharing the bit of "_~`" instead made those characters as common as the space: "_" and "~",
-- found nowhere, went from ~15 ms to ~500 ms.) Names are now joined by a line feed, which has no
-- bit (so it makes no pair, also within a name that holds one), where their characters or pairs
-- are taken together: joined by a space, every day of two names would hold one. Every day's
-- characters and pairs are counted again, and the months' character keys of the names that hold a
-- space or "}" added (a key of bit 61 that "}" set stays: it can only let a month through).
-- Runs as the session's login: the table and functions are on the audit path (see CONVENTIONS.md).

set local role none;

-- The namer waits here (its lock) until this migration commits: the backfills below read every
-- name and entry named so far, and every later round keeps the new bit.
select pg_advisory_xact_lock(7295061840133851322);

-- The characters with a bit, in bit order (bit 0 is "a"); never reorder: kept masks depend on it.
-- (The same groups as app_private.audit_char_groups below, written out: this runs for every name.)
create or replace function app_private.audit_char_mask(p_text text) returns bigint
language sql immutable parallel safe set search_path = pg_catalog as $$
  select coalesce(sum(1::bigint << (i - 1)), 0)::bigint
         | case when p_text ~ '[%\\^]' then 1::bigint << 62 else 0 end
         | case when p_text ~ '[_~`]' then 1::bigint << 63 else 0 end
         | case when strpos(p_text, '}') > 0 then 1::bigint << 59 else 0 end
  from generate_series(1, 62) i
  where strpos(p_text, substr('abcdefghijklmnopqrstuvwxyz0123456789!"#$&''()*+,-./:;<=>?@[]{| ', i, 1)) > 0
$$;
comment on function app_private.audit_char_mask(text) is
  'One bit for each of the characters a-z, 0-9, !"#$&''()*+,-./:;<=>?@[]{| and the space that the text holds ("}" shares the bit of "{"), bit 62 for any of %\^ and bit 63 for any of _~` (000064, 000067, 000070).';

-- The characters of each of the mask's 64 bits, in bit order, as app_private.audit_char_mask sets
-- them: for the pairs, which are kept per bit. No SET, so that a call is folded into a constant
-- where it is planned (it names only built-in functions).
create function app_private.audit_char_groups() returns text[]
language sql immutable parallel safe as $$
  select array(select case when i = 60 then '{}' when i <= 62 then substr('abcdefghijklmnopqrstuvwxyz0123456789!"#$&''()*+,-./:;<=>?@[]{| ', i, 1)
                           when i = 63 then '%\^' else '_~`' end
               from generate_series(1, 64) i order by i)
$$;
comment on function app_private.audit_char_groups() is
  'The characters of each bit of app_private.audit_char_mask, in bit order: 64 groups (000070).';
revoke all on function app_private.audit_char_groups() from public;

-- The pairs of adjacent characters (000068), with the space's bit (and "}" in the bit of "{").
create or replace function app_private.audit_pair_masks(p_text text) returns bit(4096)
language sql immutable parallel safe set search_path = pg_catalog as $$
  select string_agg(coalesce((
           select app_private.audit_char_mask(string_agg(f.c, ''))
           from (select left(p, 1) as c
                 from regexp_split_to_table(g.chars, '') k, unnest((string_to_array(p_text, k))[2:]) p
                 union all
                 select k from regexp_split_to_table(g.chars, '') k where strpos(p_text, k || k) > 0) f), 0)::bit(64)::text,
         '' order by g.i)::bit(4096)
  from unnest(app_private.audit_char_groups()) with ordinality g(chars, i)
$$;
comment on function app_private.audit_pair_masks(text) is
  'The pairs of adjacent characters of a text: for each of the 64 characters or groups of app_private.audit_char_mask, in its bit order, the 64-bit mask of the characters that follow it (000068).';

-- The pairs of adjacent literal characters of a lowered LIKE pattern (escaped characters are
-- literal; % and _ end a run), as app_private.audit_pair_masks gives a text's: null when it has
-- none with a bit on both sides.
create or replace function app_private.audit_pattern_pair_masks(p_lowered text) returns bit(4096)
language sql immutable parallel safe set search_path = pg_catalog as $$
  with t as (
    select x.n, case when x.m[2] is null then coalesce(x.m[1], x.m[3]) end as c
    from regexp_matches(p_lowered, '\\(.)|([%_])|(.)', 'g') with ordinality as x(m, n)
  ), p as (
    select lag(t.c) over (order by t.n) as a, t.c as b from t
  ), k as (
    select g.i, bit_or(app_private.audit_char_mask(p.b)) as follows
    from p
    join unnest(app_private.audit_char_groups()) with ordinality g(chars, i) on strpos(g.chars, p.a) > 0
    where p.a is not null and p.b is not null
    group by g.i
  )
  select case when (select bool_or(k.follows <> 0) from k) then
           (select string_agg(coalesce(k.follows, 0)::bit(64)::text, '' order by s.i)
            from generate_series(1, 64) s(i) left join k on k.i = s.i)::bit(4096) end
$$;
comment on function app_private.audit_pattern_pair_masks(text) is
  'The pairs of adjacent literal characters that every text matching a lowered LIKE pattern holds, as app_private.audit_pair_masks (000068); null for none.';


-- Names taken together are joined by a line feed (no bit: no pair across two names), not a space (000070).
create or replace function app_private.tg_audit_label_days__chars() returns trigger
language plpgsql set search_path = pg_catalog as $$
begin
  insert into app_private.audit_label_chars as c (tenant_id, day, chars, pairs)
  select n.tenant_id, n.day, app_private.audit_char_mask(n.names), app_private.audit_pair_masks(n.names)
  from (select n.tenant_id, n.day, string_agg(n.label_lower, E'\n') as names from new_names n group by n.tenant_id, n.day) n
  on conflict (tenant_id, day) do update
    set chars = c.chars | excluded.chars, pairs = c.pairs | excluded.pairs
    where c.chars | excluded.chars <> c.chars or not app_private.audit_pairs_hold(c.pairs, excluded.pairs);
  return null;
end;
$$;
comment on function app_private.tg_audit_label_days__chars() is
  'Adds the characters (000064) and the pairs of adjacent characters (000068) of names new to their day to app_private.audit_label_chars, the names joined by a line feed (000070).';

-- The namer: the same, its characters of a month's names of an action taken together the same way.
create or replace function app_private.name_audit_entries(max_entries int default 50000) returns bigint
language plpgsql volatile security definer set search_path = pg_catalog, public set jit = off as $$
declare
  v_seal app_private.audit_seal_state;
  v_state app_private.audit_label_state;
  v_n bigint;
  v_last_xid bigint;
  v_last_id bigint;
begin
  -- One at a time; a second one waits here and then goes on from the first one's cursor.
  perform pg_advisory_xact_lock(7295061840133851322);
  select * into v_seal from app_private.audit_seal_state;
  select * into v_state from app_private.audit_label_state;
  if (v_state.last_xid, v_state.last_id) >= (v_seal.last_xid, v_seal.last_id) then
    perform app_private.tidy_audit_names(v_state);
    return 0;
  end if;
  -- The cursors as literals: the planner then reads the entries between them by the seal order.
  execute format($q$
    with batch as (
      select e.tenant_id, e.xid, e.id, e.occurred_at, e.resource_label, e.action
      from app_public.audit_log e
      where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and (e.xid, e.id) <= (%3$s, %4$s)
      order by e.xid, e.id
      limit $1
    ), named as (
      insert into app_private.audit_label_days as l (tenant_id, day, label, first_at, last_at, entries)
      select b.tenant_id, (b.occurred_at at time zone 'UTC')::date, b.resource_label, min(b.occurred_at), max(b.occurred_at), count(*)
      from batch b where b.resource_label is not null
      group by 1, 2, 3
      on conflict on constraint audit_label_days_pkey
        do update set first_at = least(l.first_at, excluded.first_at), last_at = greatest(l.last_at, excluded.last_at),
                      entries = l.entries + excluded.entries
    ), acted as (
      -- (000065) a row is written only when a name brings its trigram a new action
      insert into app_private.audit_label_trigram_months as m (tenant_id, month, trigram, actions)
      select u.tenant_id, u.month, u.key, bit_or(u.actions)
      from (
        -- (app_private.audit_label_trigram_keys written out: a call of it per name costs more than
        -- its work, and the grouping below takes out the keys a name holds twice)
        select x.tenant_id, x.month, k.key, x.actions
        from (select b.tenant_id, date_trunc('month', b.occurred_at at time zone 'UTC')::date as month, b.resource_label,
                     bit_or(app_private.audit_action_bits(b.action)) as actions
              from batch b where b.resource_label is not null
              group by 1, 2, 3) x
        cross join lateral (
          select hashtext(t) as key from unnest(show_trgm(x.resource_label)) t
          union all
          select 0 where lower(x.resource_label) ~ '[^\x01-\x7F]') k
        union all
        -- (000069) and each character with a bit, -1 … -64, with the actions of the names that hold
        -- it (one mask for the names of each action of the month, not one per name)
        select y.tenant_id, y.month, -i, y.actions
        from (select b.tenant_id, date_trunc('month', b.occurred_at at time zone 'UTC')::date as month,
                     app_private.audit_action_bits(b.action) as actions,
                     app_private.audit_char_mask(lower(string_agg(b.resource_label, E'\n'))) as chars
              from batch b where b.resource_label is not null
              group by 1, 2, b.action) y
        cross join generate_series(1, 64) i
        where y.chars & (1::bigint << (i - 1)) <> 0) u
      group by 1, 2, 3
      on conflict (tenant_id, month, trigram) do update set actions = m.actions | excluded.actions
        where m.actions | excluded.actions <> m.actions
    )
    select count(*), (array_agg(b.xid order by b.xid desc, b.id desc))[1], (array_agg(b.id order by b.xid desc, b.id desc))[1]
    from batch b$q$,
    v_state.last_xid, v_state.last_id, v_seal.last_xid, v_seal.last_id)
    into v_n, v_last_xid, v_last_id using max_entries;
  if v_n > 0 then
    update app_private.audit_label_state set last_xid = v_last_xid, last_id = v_last_id;
  end if;
  if v_n < max_entries then
    perform app_private.tidy_audit_names(v_state);
  end if;
  return v_n;
end;
$$;

-- Every day's characters and pairs, counted again.
update app_private.audit_label_chars c set chars = k.chars, pairs = k.pairs
from (select l.tenant_id, l.day, app_private.audit_char_mask(string_agg(l.label_lower, E'\n')) as chars,
             app_private.audit_pair_masks(string_agg(l.label_lower, E'\n')) as pairs
      from app_private.audit_label_days l
      group by l.tenant_id, l.day) k
where k.tenant_id = c.tenant_id and k.day = c.day and (c.chars <> k.chars or c.pairs is distinct from k.pairs);

-- The entries named so far whose names hold a space or "}": their characters' keys with their
-- actions, per tenant, month and action (as the namer keeps them).
insert into app_private.audit_label_trigram_months as m (tenant_id, month, trigram, actions)
select y.tenant_id, y.month, -i, bit_or(y.actions)
from (select e.tenant_id, date_trunc('month', e.occurred_at at time zone 'UTC')::date as month,
             app_private.audit_action_bits(e.action) as actions,
             app_private.audit_char_mask(lower(string_agg(e.resource_label, E'\n'))) as chars
      from app_public.audit_log e, app_private.audit_label_state s
      where e.resource_label ~ '[ }]' and (e.xid, e.id) <= (s.last_xid, s.last_id)
      group by 1, 2, e.action) y
cross join generate_series(1, 64) i
where y.chars & (1::bigint << (i - 1)) <> 0
group by 1, 2, 3
on conflict (tenant_id, month, trigram) do update set actions = m.actions | excluded.actions
  where m.actions | excluded.actions <> m.actions;

set local role :DATABASE_OWNER;
