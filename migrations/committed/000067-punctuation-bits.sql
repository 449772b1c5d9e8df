--! Previous: sha1:6994c28d9937357354a56b208ae5740e37c9a607
--! Hash: sha1:03e5320d630273ccc742cb874302be17f9b57840
--! Message: punctuation-bits

-- 000067 The last two bits of a day's characters: "%", "\", "^" and "_", "~", "`".
--
-- A search for one of the ASCII characters without a bit of their own (a literal "%" or "_", a
-- backslash, "~", "^", "`") had no key to look the names up by: GraphQL's resourceLabelContains read
-- every day's names of the tenant, ~345 ms in the 2,000,000-entry bench tenant for a "%" found
-- nowhere, and so did its count. app_private.audit_char_mask gives them the two bits it left free
-- (bit 62: "%", "\", "^"; bit 63: "_", "~", "`"; two characters sharing a bit can only let a day
-- through that holds neither), and the days' kept characters are counted again.
-- Runs as the session's login: the function and the table are on the audit path (see CONVENTIONS.md).

set local role none;

-- The namer waits here (its lock) until this migration commits: no name is kept with the old bits
-- after the days are counted again below.
select pg_advisory_xact_lock(7295061840133851322);

-- The characters with a bit, in bit order (bit 0 is "a"); never reorder: kept masks depend on it.
create or replace function app_private.audit_char_mask(p_text text) returns bigint
language sql immutable parallel safe set search_path = pg_catalog as $$
  select coalesce(sum(1::bigint << (i - 1)), 0)::bigint
         | case when p_text ~ '[%\\^]' then 1::bigint << 62 else 0 end
         | case when p_text ~ '[_~`]' then 1::bigint << 63 else 0 end
  from generate_series(1, 62) i
  where strpos(p_text, substr('abcdefghijklmnopqrstuvwxyz0123456789!"#$&''()*+,-./:;<=>?@[]{|}', i, 1)) > 0
$$;
comment on function app_private.audit_char_mask(text) is
  'One bit for each of the characters a-z, 0-9 and !"#$&''()*+,-./:;<=>?@[]{|} that the text holds, bit 62 for any of %\^ and bit 63 for any of _~` (000064, 000067).';

-- The days whose names hold one of them (the namer waits on the table's rows meanwhile).
update app_private.audit_label_chars c set chars = c.chars | k.chars
from (select l.tenant_id, l.day, app_private.audit_char_mask(string_agg(l.label_lower, ' ')) as chars
      from app_private.audit_label_days l
      where l.label_lower ~ '[%\\^_~`]'
      group by l.tenant_id, l.day) k
where k.tenant_id = c.tenant_id and k.day = c.day and c.chars <> c.chars | k.chars;

set local role :DATABASE_OWNER;
