--! Previous: sha1:6083ec3f26e8ba39610dd2830ac3fdce8c77bd59
--! Hash: sha1:37c560923944b854a54c2d6e7ebb896c6efd41c8
--! Message: hardening

-- 000007 Hardening: sign-in limits that hold under concurrency, webhooks that can be re-enabled
-- from the page, webhook URLs refused in the database when they point at private addresses, and
-- evidence filenames without invisible format characters.

------------------------------------------------------------------------------
-- Sign-in: the failed-attempt count is taken and raised atomically
------------------------------------------------------------------------------

/**
 * Starts a sign-in attempt. Under a transaction-level advisory lock per email and per IP it counts
 * the failed attempts of the last 15 minutes and, unless a limit is reached, records this attempt
 * as a failure straight away (undone by sign_in_attempt_succeeded). Concurrent guesses therefore
 * see each other: at most `refuse_after` passwords are ever checked per email in the window.
 * A refused attempt is recorded (and audited) as a failed sign-in.
 */
drop function if exists app_private.sign_in_attempt(text, text, int, int);
create function app_private.sign_in_attempt(email text, ip text, refuse_after int, refuse_ip_after int)
returns table (attempt_id bigint, user_id uuid, password_hash text, email_failures int, ip_failures int, refused boolean)
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_email text := lower(sign_in_attempt.email);
  v_ip inet := case when sign_in_attempt.ip ~ '^[0-9a-fA-F.:]+$' then sign_in_attempt.ip::inet end;
  v_user uuid;
  v_hash text;
  v_email_failures int;
  v_ip_failures int;
  v_attempt bigint;
begin
  perform pg_advisory_xact_lock(hashtextextended('attest:sign-in:email:' || v_email, 0));
  if v_ip is not null then
    perform pg_advisory_xact_lock(hashtextextended('attest:sign-in:ip:' || host(v_ip), 0));
  end if;
  select u.id, s.password_hash into v_user, v_hash
  from app_public.users u left join app_private.user_secrets s on s.user_id = u.id
  where u.email = v_email;
  select count(*)::int into v_email_failures from app_private.sign_in_failures f
  where f.attempted_at > now() - interval '15 minutes' and f.email = v_email;
  select count(*)::int into v_ip_failures from app_private.sign_in_failures f
  where f.attempted_at > now() - interval '15 minutes' and v_ip is not null and f.ip = v_ip;
  insert into app_private.sign_in_failures (email, ip) values (v_email, v_ip) returning id into v_attempt;
  if v_email_failures >= refuse_after or v_ip_failures >= refuse_ip_after then
    if v_user is not null then
      perform app_private.record_session_event(v_user, v_email, 'sign_in_failed');
    end if;
    return query select v_attempt, null::uuid, null::text, v_email_failures, v_ip_failures, true;
    return;
  end if;
  return query select v_attempt, v_user, v_hash, v_email_failures, v_ip_failures, false;
end;
$$;
comment on function app_private.sign_in_attempt(text, text, int, int) is
  'Counts recent failed sign-ins for an email and an IP and records this attempt as one, atomically (advisory locks); refuses past the limits.';

/** The password was right: the attempt is not a failure after all; starts the session. */
drop function if exists app_private.sign_in_attempt_succeeded(bigint, uuid);
create function app_private.sign_in_attempt_succeeded(attempt_id bigint, p_user_id uuid) returns text
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
begin
  delete from app_private.sign_in_failures f where f.id = sign_in_attempt_succeeded.attempt_id;
  return app_private.sign_in_succeeded(p_user_id);
end;
$$;
comment on function app_private.sign_in_attempt_succeeded(bigint, uuid) is
  'Clears the failure recorded for a sign-in attempt whose password was right, and starts the session.';

/** The password was wrong: the failure is already counted; audit it for a known user. */
drop function if exists app_private.sign_in_attempt_failed(text);
create function app_private.sign_in_attempt_failed(email text) returns void
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_user uuid := (select u.id from app_public.users u where u.email = lower(sign_in_attempt_failed.email));
begin
  if v_user is not null then
    perform app_private.record_session_event(v_user, lower(sign_in_attempt_failed.email), 'sign_in_failed');
  end if;
end;
$$;
comment on function app_private.sign_in_attempt_failed(text) is
  'Records a failed sign-in (counted by sign_in_attempt) in the audit trail of the user''s tenants.';

grant execute on function app_private.sign_in_attempt(text, text, int, int),
  app_private.sign_in_attempt_succeeded(bigint, uuid), app_private.sign_in_attempt_failed(text)
  to :DATABASE_AUTHENTICATOR;

------------------------------------------------------------------------------
-- Webhooks: re-enabling clears the reason it was disabled; private addresses are refused
------------------------------------------------------------------------------

/**
 * Whether a webhook URL points at an address that is not on the public internet (loopback,
 * private, link-local, multicast, and the IPv6 forms that embed an IPv4 address: IPv4-mapped and
 * -compatible, NAT64, 6to4, Teredo), or at `localhost`. Returns a sentence for the user, or null.
 * Names that resolve to such addresses are refused at delivery time, on the address connected to.
 * The server sets `attest.webhooks_allow_private` when the operator allows private addresses.
 */
create or replace function app_private.webhook_url_problem(url text) returns text
language plpgsql stable set search_path = pg_catalog as $$
declare
  v_problem constant text := 'Webhooks may not point at private, loopback or link-local addresses.';
  v_host text;
  v_addr inet;
begin
  if url is null or coalesce(current_setting('attest.webhooks_allow_private', true), '') = 'true' then
    return null;
  end if;
  v_host := lower(substring(url from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^]]*\]|[^:/?#]*)'));
  if v_host is null or v_host = '' then
    return 'The webhook URL must name a host.';
  end if;
  if v_host ~ '^\[' then
    v_host := btrim(v_host, '[]');
    begin
      v_addr := v_host::inet;
    exception when others then
      return 'The webhook URL has an IPv6 address that is not valid.';
    end;
  else
    if v_host ~ '[%\\]' then
      return 'The webhook URL has a host name that is not valid.';
    end if;
    v_host := rtrim(v_host, '.');
    if v_host = 'localhost' or v_host like '%.localhost' then
      return v_problem;
    end if;
    -- Host names made only of numbers are IPv4 addresses to a browser or URL parser, also in
    -- short, octal or hex forms (127.1, 0177.0.0.1, 0x7f000001): only a.b.c.d in decimal is taken.
    if v_host ~ '^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*$' or v_host ~ '^[0-9.]+$' then
      if v_host !~ '^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}$' then
        return 'Write an IPv4 address in a webhook URL as four decimal numbers (a.b.c.d).';
      end if;
      begin
        v_addr := v_host::inet;
      exception when others then
        return 'The webhook URL has an IPv4 address that is not valid.';
      end;
    end if;
  end if;
  if v_addr is null then
    return null;
  end if;
  if family(v_addr) = 4 then
    if v_addr << any (array['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16',
                            '172.16.0.0/12', '192.0.0.0/24', '192.168.0.0/16', '198.18.0.0/15', '224.0.0.0/3']::inet[]) then
      return v_problem;
    end if;
  elsif v_addr <<= any (array['::/96', '::ffff:0:0/96', '64:ff9b::/96', '64:ff9b:1::/48', '2002::/16', '2001::/32',
                              '100::/64', 'fc00::/7', 'fe80::/10', 'fec0::/10', 'ff00::/8']::inet[]) then
    return v_problem;
  end if;
  return null;
end;
$$;
comment on function app_private.webhook_url_problem(text) is
  'Why a webhook URL may not be saved (private, loopback, link-local or IPv4-embedding address, localhost), or null.';

-- Security definer: it calls app_private.webhook_url_problem, and client roles have no usage on app_private.
create or replace function app_private.tg_webhooks__rules() returns trigger
language plpgsql security definer set search_path = pg_catalog as $$
declare
  v_problem text;
begin
  if tg_op = 'INSERT' or new.url is distinct from old.url then
    v_problem := app_private.webhook_url_problem(new.url);
    if v_problem is not null then
      raise exception '%', v_problem using errcode = '23514', constraint = 'webhooks_url_address';
    end if;
  end if;
  -- Switching a webhook back on clears why it was switched off and starts its failure count anew.
  if tg_op = 'UPDATE' and new.active and not old.active then
    new.disabled_reason := null;
    new.consecutive_failures := 0;
  end if;
  return new;
end;
$$;
comment on function app_private.tg_webhooks__rules() is
  'Refuses webhook URLs that point at private addresses; re-enabling a webhook clears disabled_reason and the failure count.';

drop trigger if exists _200_rules on app_public.webhooks;
create trigger _200_rules before insert or update on app_public.webhooks
  for each row execute function app_private.tg_webhooks__rules();

------------------------------------------------------------------------------
-- Evidence filenames: no bidirectional or other invisible format characters
------------------------------------------------------------------------------

-- U+202E turns "invoice‮fdp.exe" into "invoiceexe.pdf" on screen. Existing rows are not
-- re-checked (not valid); every new or renamed file is.
alter table app_public.evidence drop constraint if exists evidence_filename_format_check;
alter table app_public.evidence add constraint evidence_filename_format_check
  check (filename !~ '[\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]') not valid;
