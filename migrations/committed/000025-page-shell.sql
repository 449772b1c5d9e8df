--! Previous: sha1:de2f71a517122e8bd187250bdb7afb735f15c762
--! Hash: sha1:f05ecb32fe1dc907373c3e640a1333943d5e051a
--! Message: page-shell

-- 000025 Page shell: what every workspace page shows in its frame, in one function call.
--
-- Every page under /t/<slug>/ first asked for the signed-in user, the tenant of the URL with its
-- plan and features, the user's role there and the tenants they can switch to: one statement
-- that called current_user(), current_tenant(), current_tenant_role(), tenants_features() and,
-- for each visible tenant, tenants_my_role(), each looking the session and the membership up
-- again through the row-level policies (~2.2 ms on PostgreSQL 15). app_hidden.page_shell looks
-- them up once and answers exactly what those policies let the caller see: their own user row,
-- the tenant they act in (when its slug is the one asked for), and the tenants of their own
-- memberships (none beyond the acting tenant for an API token, as app_hidden.current_user_tenant_ids).

create function app_hidden.page_shell(p_slug text)
returns table (user_id uuid, email text, user_name text, tenant_id uuid, slug text, tenant_name text,
               plan_name text, features text[], role text, tenants json)
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_user app_public.users;
  v_membership record;
begin
  select u.* into v_user from app_public.users u where u.id = app_public.current_user_id();
  if v_user.id is null then
    return;
  end if;
  select * into v_membership from app_private.current_membership();
  return query
    select v_user.id, v_user.email, v_user.name,
           t.id, t.slug, t.name, p.name, coalesce(p.features, '{}'), v_membership.role,
           coalesce((select json_agg(json_build_object('slug', o.slug, 'name', o.name, 'role', m.role) order by o.name)
                     from app_public.memberships m
                     join app_public.tenants o on o.id = m.tenant_id
                     where m.user_id = v_user.id
                       and (m.tenant_id = v_membership.tenant_id
                            or m.tenant_id in (select app_hidden.current_user_tenant_ids()))), '[]')
    from (select 1) one
    left join app_public.tenants t on t.id = v_membership.tenant_id and t.slug = p_slug
    left join app_public.plans p on p.id = t.plan_id;
end;
$$;
comment on function app_hidden.page_shell(text) is
  'The frame of a workspace page for the signed-in user: their user row, the tenant they act in if its slug is p_slug (with plan, features and their role), and the tenants they can switch to.';
revoke all on function app_hidden.page_shell(text) from public;
grant execute on function app_hidden.page_shell(text) to :DATABASE_VISITOR;
