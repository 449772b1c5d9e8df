--! Previous: sha1:b44d55a11ffab3f446a14abd8517d43e6bfe85c5
--! Hash: sha1:1234cc75aab37694ea2d42009e56291253f1c1f7
--! Message: request-check

-- 000018 The GraphQL request's credential check as one statement that fails.
--
-- The server sends a GraphQL request's settings, this check and the request's statement to
-- PostgreSQL together, in one message (one transaction, committed when it ends). The check
-- used to return who the credentials name for the server to judge; now it raises, so that a
-- refused request runs nothing of its own: PostgreSQL skips the rest of the message after an error.
-- The server turns the SQLSTATE into the HTTP status and message (src/graphql/index.ts).

create function app_hidden.check_request(p_token_given boolean, p_tenant_given boolean) returns void
language plpgsql stable set search_path = pg_catalog, public as $$
begin
  if app_public.current_user_id() is null then
    raise exception 'The request''s credentials are not valid.' using errcode = 'AT401';
  end if;
  if p_token_given or app_public.current_tenant_id() is not null then
    return;
  end if;
  if p_tenant_given then
    raise exception 'The caller is not a member of the tenant it names.' using errcode = 'AT404';
  end if;
  if (select count(*) from app_public.tenants) > 1 then
    raise exception 'The caller belongs to several tenants and names none.' using errcode = 'AT400';
  end if;
end;
$$;
comment on function app_hidden.check_request(boolean, boolean) is
  'Raises AT401 (credentials not valid), AT404 (not a member of the tenant named) or AT400 (several tenants, none named) for the request''s settings; the GraphQL server runs it before each statement of a request.';
revoke all on function app_hidden.check_request(boolean, boolean) from public;
grant execute on function app_hidden.check_request(boolean, boolean) to :DATABASE_VISITOR;
