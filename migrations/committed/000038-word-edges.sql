--! Previous: sha1:822cd568bf29d1b382fee9ab634201a6cf13ffa2
--! Hash: sha1:bde6aca743e8877dcdf53526dd334545c57af2b3
--! Message: word-edges

-- 000038 Words a pattern shows whole: a search for "e-31", "os o" or "t #4" uses the names too.
--
-- A search goes on through the names' index with trigrams that every text matching its pattern
-- contains (app_private.audit_pattern_trigrams). They were only the trigrams within the pattern's
-- runs of three or more letters or digits, so a pattern made of shorter words ("e-31", "os o",
-- "t #4", "-32") had none: the page read such searches in bounded stretches, and GraphQL's
-- `resourceLabelContains` read the tenant's whole log for a page (3.5 s for a rare one in the
-- 2M-entry bench tenant). pg_trgm also pads each word of a text ("  a", " ab", "ab ", " a "), and
-- where the pattern puts a literal ASCII character other than a letter or digit next to a word
-- (a space, "-", "#", ".", …), every matching text has the word start or end there, so it has
-- those padded trigrams too. And the three trigrams a probe uses are now taken from the pattern's
-- words in turn: "capture-74" was looked up by three trigrams of "capture" alone, which every
-- "capture-…" name has (a tenth of the bench tenant's names), and is now looked up by "capture"
-- and " 74". A single word's trigrams are chosen as before. Patterns that show no word edge and no
-- three letters or digits in a row ("ab", "a_b") still have none. Only a pattern's first 256
-- characters are read (GraphQL accepts a word of up to 100,000: reading it all took seconds). The
-- property test "keys of a pattern are among the keys of every name it matches"
-- (tests/db/audit-search.test.ts) checks the rule on random names and pieces.
-- Runs as the session's login: the function is on the audit path (see CONVENTIONS.md).

set local role none;

/**
 * Up to three trigrams that every text matching an ILIKE pattern contains, as pg_trgm makes them
 * (see migration 000038): within the pattern's runs of ASCII letters and digits, and at a run's
 * start or end where the pattern puts a literal ASCII character other than a letter or digit next
 * to it (pg_trgm's padded trigrams "  a", " ab", "ab ", " a "). They are taken from the words in
 * turn (a word's own trigrams spread over its sorted list first, then its padded ones, those of
 * two characters first): "capture-74" is looked up by "capture" and "74". None for a pattern such
 * as "ab" or "%-%".
 */
create or replace function app_private.audit_pattern_trigrams(p_pattern text) returns text[]
language plpgsql immutable parallel safe set search_path = pg_catalog, public as $$
declare
  -- The pattern as characters: a literal one (unescaped, lower-cased), or null for % and _.
  v_chars text[] := '{}';
  v_inner text[];
  v_two text[];
  v_one text[];
  -- every word's trigrams, each with its word's number and its rank in the word's list
  v_trigrams text[] := '{}';
  v_words int[] := '{}';
  v_ranks int[] := '{}';
  v_list text[];
  v_count int := 0;
  v_word text;
  v_len int;
  v_before boolean;
  v_after boolean;
  -- The pattern's first 1,024 characters, one by one: its first 256 (unescaped) are read, and a
  -- word cut off there counts as going on. (A bound: a pattern may be 100,000 characters long.)
  v_source text[] := coalesce(string_to_array(left(p_pattern, 1024), null), '{}');
  c text;
  i int := 1;
  s int;
  n int := cardinality(v_source);
begin
  while i <= n and cardinality(v_chars) < 256 loop
    c := v_source[i];
    if c = '\' and i < n then
      v_chars := v_chars || lower(v_source[i + 1]);
      i := i + 2;
    else
      v_chars := v_chars || case when c in ('%', '_') then null else lower(c) end;
      i := i + 1;
    end if;
  end loop;
  n := cardinality(v_chars);
  i := 1;
  while i <= n loop
    if v_chars[i] is null or v_chars[i] !~ '^[a-z0-9]$' then
      i := i + 1;
      continue;
    end if;
    s := i;
    while i <= n and v_chars[i] ~ '^[a-z0-9]$' loop
      i := i + 1;
    end loop;
    v_word := array_to_string(v_chars[s:i - 1], '');
    v_inner := '{}';
    v_two := '{}';
    v_one := '{}';
    v_len := i - s;
    -- A word's edge is known where the pattern puts a literal ASCII non-alphanumeric character
    -- next to it (pg_trgm splits words there); a wildcard or another character may go on with it.
    v_before := s > 1 and v_chars[s - 1] is not null and ascii(v_chars[s - 1]) < 128;
    v_after := i <= n and v_chars[i] is not null and ascii(v_chars[i]) < 128;
    for k in 1 .. v_len - 2 loop
      v_inner := v_inner || substr(v_word, k, 3);
    end loop;
    if v_before then
      v_one := v_one || ('  ' || left(v_word, 1));
      if v_len >= 2 then
        v_two := v_two || (' ' || left(v_word, 2));
      elsif v_after then
        v_two := v_two || (' ' || v_word || ' ');
      end if;
    end if;
    if v_after and v_len >= 2 then
      v_two := v_two || (right(v_word, 2) || ' ');
    end if;
    -- The word's list: its first, middle and last trigram (sorted), its others, its padded ones.
    v_inner := array(select distinct t collate "C" from unnest(v_inner) t order by 1);
    if cardinality(v_inner) >= 3 then
      v_inner := array[v_inner[1], v_inner[(cardinality(v_inner) + 1) / 2], v_inner[cardinality(v_inner)]]
                 || array(select t from unnest(v_inner) t
                          where t not in (v_inner[1], v_inner[(cardinality(v_inner) + 1) / 2], v_inner[cardinality(v_inner)]));
    end if;
    v_list := v_inner || array(select distinct t collate "C" from unnest(v_two) t order by 1)
                      || array(select distinct t collate "C" from unnest(v_one) t order by 1);
    if cardinality(v_list) > 0 then
      v_count := v_count + 1;
      v_trigrams := v_trigrams || v_list;
      v_words := v_words || array_fill(v_count, array[cardinality(v_list)]);
      v_ranks := v_ranks || array(select generate_series(1, cardinality(v_list)));
    end if;
  end loop;
  -- In turn: each word's first, then each word's second, …; three at most.
  return array(
    select x.t from (
      select u.t, min(u.rank) as rank, min(u.word) as word from unnest(v_trigrams, v_words, v_ranks) u(t, word, rank)
      group by u.t) x
    order by x.rank, x.word
    limit 3);
end;
$$;

set local role :DATABASE_OWNER;
