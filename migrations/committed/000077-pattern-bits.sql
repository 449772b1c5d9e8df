--! Previous: sha1:83c613dbeef9c58ce4582f4097c512cdc0520f0e
--! Hash: sha1:b3f056ca84576e16e76dcc0e896393b4ef7be73f
--! Message: pattern-bits

-- 000077 A pattern's characters, pairs and runs of three: read once, character by character.
--
-- A search of a word in a large tenant (app_private.audit_search's walk of the names) works out
-- what every match of its pattern must hold: the characters with a bit
-- (app_private.audit_pattern_char_mask, 000064), the pairs of adjacent characters
-- (app_private.audit_pattern_pair_masks, 000068) and the runs of three with a character other than
-- a-z and 0-9 (app_private.audit_pattern_triple_bits, 000075). Each split the pattern with
-- regexp_matches and built its answer with a query: joins over the 64 character groups, window
-- functions, a 64-row string_agg. Measured with track_functions on the 10M-entry bench database
-- (big tenant, 40 calls in one transaction), per call of the search: ~0.19-0.22 ms for the pairs,
-- ~0.05-0.1 ms for the characters (twice with actions), ~0.07 ms for the runs of three; a search
-- of "#1" with incident.created took ~3.9 ms in all. A small tenant's search does not walk the
-- names, so this work was the large tenant's alone (the benchmark's big / small ratio).
--
-- Each now reads the pattern once, one character at a time, in PL/pgSQL, and sets its bits: the
-- same answers (tests/db/audit-search.test.ts compares them with the former definitions on
-- generated patterns), a few microseconds for a short word.
--
-- Runs as the session's login: the functions are on the audit path (see CONVENTIONS.md).

set local role none;

create or replace function app_private.audit_pattern_char_mask(p_lowered text) returns bigint
language plpgsql immutable parallel safe set search_path = pg_catalog as $$
declare
  v_mask bigint := 0;
  v_n int := length(p_lowered);
  v_i int := 1;
  v_c text;
  v_g int;
begin
  -- (Each literal character: an escaped one, or any but an unescaped % and _; a lone \ at the end
  -- is itself.)
  while v_i <= v_n loop
    v_c := substr(p_lowered, v_i, 1);
    if v_c = '\' and v_i < v_n then
      v_i := v_i + 1;
      v_c := substr(p_lowered, v_i, 1);
    elsif v_c = '%' or v_c = '_' then
      v_c := null;
    end if;
    if v_c is not null then
      -- (the character's group, as app_private.audit_char_groups() lists them; null for none)
      v_g := case when strpos('abcdefghijklmnopqrstuvwxyz0123456789!"#$&''()*+,-./:;<=>?@[]{| ', v_c) > 0
                   then strpos('abcdefghijklmnopqrstuvwxyz0123456789!"#$&''()*+,-./:;<=>?@[]{| ', v_c)
                   when v_c = '}' then 60 when v_c in ('%', '\', '^') then 63 when v_c in ('_', '~', '`') then 64 end;
      if v_g is not null then
        v_mask := v_mask | (1::bigint << (v_g - 1));
      end if;
    end if;
    v_i := v_i + 1;
  end loop;
  return v_mask;
end;
$$;

create or replace function app_private.audit_pattern_pair_masks(p_lowered text) returns bit(4096)
language plpgsql immutable parallel safe set search_path = pg_catalog as $$
declare
  v_bits bit(4096);
  v_n int := length(p_lowered);
  v_i int := 1;
  v_c text;
  v_g int;
  -- the group of the literal character before this one (null: none, a wildcard or no group)
  v_prev int;
begin
  while v_i <= v_n loop
    v_c := substr(p_lowered, v_i, 1);
    if v_c = '\' and v_i < v_n then
      v_i := v_i + 1;
      v_c := substr(p_lowered, v_i, 1);
    elsif v_c = '%' or v_c = '_' then
      v_c := null;
    end if;
    -- (the character's group, as app_private.audit_char_groups() lists them; null for none)
    v_g := case when strpos('abcdefghijklmnopqrstuvwxyz0123456789!"#$&''()*+,-./:;<=>?@[]{| ', v_c) > 0
                   then strpos('abcdefghijklmnopqrstuvwxyz0123456789!"#$&''()*+,-./:;<=>?@[]{| ', v_c)
                   when v_c = '}' then 60 when v_c in ('%', '\', '^') then 63 when v_c in ('_', '~', '`') then 64 end;
    if v_prev is not null and v_g is not null then
      -- Row v_prev (64 bits, as bigint::bit(64) writes the mask of the groups that follow it):
      -- group v_g's bit, 1 << (v_g - 1), is written at 64 - v_g from the row's start.
      v_bits := set_bit(coalesce(v_bits, repeat('0', 4096)::bit(4096)), (v_prev - 1) * 64 + 64 - v_g, 1);
    end if;
    v_prev := v_g;
    v_i := v_i + 1;
  end loop;
  return v_bits;
end;
$$;

create or replace function app_private.audit_pattern_triple_bits(p_lowered text) returns bit(4096)
language plpgsql immutable parallel safe set search_path = pg_catalog as $$
declare
  v_bits bit(4096);
  v_n int := length(p_lowered);
  v_i int := 1;
  v_c text;
  -- the two literal characters before this one (null: none, or a wildcard)
  v_a text;
  v_b text;
  v_run text;
begin
  while v_i <= v_n loop
    v_c := substr(p_lowered, v_i, 1);
    if v_c = '\' and v_i < v_n then
      v_i := v_i + 1;
      v_c := substr(p_lowered, v_i, 1);
    elsif v_c = '%' or v_c = '_' then
      v_c := null;
    end if;
    v_run := v_a || v_b || v_c;
    if v_run ~ '[^a-z0-9]' then
      v_bits := set_bit(coalesce(v_bits, repeat('0', 4096)::bit(4096)), hashtext(v_run) & 4095, 1);
    end if;
    v_a := v_b;
    v_b := v_c;
    v_i := v_i + 1;
  end loop;
  return v_bits;
end;
$$;
