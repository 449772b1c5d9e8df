--! Previous: sha1:3dc69f32d401a51e674eef0a2bcb61e5997a4f19
--! Hash: sha1:cf8f0963a1558e26145d64816ecdfb31c9758462
--! Message: cached-helpers

-- 000076 The search's small helpers planned once per session, not at every call.
--
-- A function in LANGUAGE sql that cannot be inlined (it has a SET clause, or is called on its own
-- from PL/pgSQL) is planned again each time a statement calls it: ~0.15-0.3 ms a call for these,
-- more than their work. The names' walk of the search calls them once or several times a search,
-- and more often the bigger the tenant (a month probe of the actions' months for each month the
-- walk reaches: ~1.2 ms of a ~5.8 ms search for "#1" with incident.created in the
-- 2,000,000-entry bench tenant, none in a 300-entry one). As PL/pgSQL functions with the same
-- results, their statements are planned once per session and kept.
-- Runs as the session's login: the functions are on the audit path (see CONVENTIONS.md).

set local role none;

create or replace function app_private.audit_months_may_match(p_tenant uuid, p_first date, p_last date, p_keys int[], p_all boolean,
  p_actions text[]) returns date[]
-- (Planned without the range's length, a thousand months, which JIT would compile: ~7 ms a call.)
language plpgsql stable parallel safe set search_path = pg_catalog set jit = off as $$
begin
  -- (The actions' bits worked out once, not for each row read.)
  return (
    select coalesce(array_agg(x.month order by x.month), '{}') from (
      select mo::date as month
      from pg_catalog.generate_series(p_first, p_last, interval '1 month') mo,
           (select array(select app_private.audit_action_bits(a) from pg_catalog.unnest(p_actions) a) as bits offset 0) b
      where p_keys is null or exists (
        select 1 from pg_catalog.unnest(b.bits) bits
        where (select count(*) from app_private.audit_label_trigram_months m
               where m.tenant_id = p_tenant and m.month = mo::date and m.trigram = any (p_keys)
                 and m.actions & bits = bits)
              >= case when p_all then (select count(distinct k) from pg_catalog.unnest(p_keys) k) else 1 end)) x);
end;
$$;

create or replace function app_private.audit_filter_sql(p_filter jsonb) returns text
language plpgsql immutable set search_path = pg_catalog as $$
declare
  v text[] := '{}';
begin
  if p_filter->>'actor' is not null then
    v := v || format('e.actor_label = %L', p_filter->>'actor');
  end if;
  if p_filter->>'incident' is not null then
    v := v || format('e.incident_id = %L::uuid', p_filter->>'incident');
  end if;
  if p_filter->>'surface' is not null then
    v := v || format('e.surface = %L', p_filter->>'surface');
  end if;
  if p_filter->>'ip' is not null then
    v := v || format('e.ip = %L::inet', p_filter->>'ip');
  end if;
  if p_filter->>'from' is not null then
    v := v || format('e.occurred_at >= %L::timestamptz', p_filter->>'from');
  end if;
  if p_filter->>'to' is not null then
    v := v || format('e.occurred_at < %L::timestamptz', p_filter->>'to');
  end if;
  if p_filter->>'after_id' is not null then
    v := v || format('e.id > %L::bigint', p_filter->>'after_id');
  end if;
  if p_filter->>'through_id' is not null then
    v := v || format('e.id <= %L::bigint', p_filter->>'through_id');
  end if;
  return case when cardinality(v) = 0 then 'true' else array_to_string(v, ' and ') end;
end;
$$;

create or replace function app_private.audit_char_mask(p_text text) returns bigint
language plpgsql immutable parallel safe set search_path = pg_catalog as $$
begin
  return (
    select coalesce(sum(1::bigint << (i - 1)), 0)::bigint
           | case when p_text ~ '[%\\^]' then 1::bigint << 62 else 0 end
           | case when p_text ~ '[_~`]' then 1::bigint << 63 else 0 end
           | case when strpos(p_text, '}') > 0 then 1::bigint << 59 else 0 end
    from generate_series(1, 62) i
    where strpos(p_text, substr('abcdefghijklmnopqrstuvwxyz0123456789!"#$&''()*+,-./:;<=>?@[]{| ', i, 1)) > 0);
end;
$$;

create or replace function app_private.audit_pattern_char_mask(p_lowered text) returns bigint
language plpgsql immutable parallel safe set search_path = pg_catalog as $$
begin
  return app_private.audit_char_mask(regexp_replace(p_lowered, '\\(.)|[%_]', '\1', 'g'));
end;
$$;

create or replace function app_private.audit_char_month_keys(p_mask bigint) returns int[]
language plpgsql immutable parallel safe set search_path = pg_catalog as $$
begin
  return nullif(array(select -i from generate_series(1, 64) i where p_mask & (1::bigint << (i - 1)) <> 0), '{}');
end;
$$;

create or replace function app_private.audit_pattern_month_keys(p_trigrams text[], p_short text[]) returns int[]
language plpgsql immutable parallel safe set search_path = pg_catalog as $$
begin
  return case
    when cardinality(p_trigrams) > 0 then array(select pg_catalog.hashtext(t) from pg_catalog.unnest(p_trigrams) t)
    when p_short is not null then array(select pg_catalog.hashtext(t) from pg_catalog.unnest(p_short) t) || 0
  end;
end;
$$;

create or replace function app_private.audit_pattern_triple_bits(p_lowered text) returns bit(4096)
language plpgsql immutable parallel safe set search_path = pg_catalog as $$
begin
  return (
    with t as (
      select x.n, case when x.m[2] is null then coalesce(x.m[1], x.m[3]) end as c
      from regexp_matches(p_lowered, '\\(.)|([%_])|(.)', 'g') with ordinality as x(m, n)
    ), r as (
      select t.c || lead(t.c) over (order by t.n) || lead(t.c, 2) over (order by t.n) as run from t
    ), b as (
      select distinct hashtext(r.run) & 4095 as bit from r where r.run ~ '[^a-z0-9]'
    )
    select bit_or(B'1'::bit(4096) >> b.bit) from b);
end;
$$;
