import { GraphQLError, Kind, type ValidationRule, type SelectionSetNode, type ValidationContext } from "postgraphile/graphql";
import { lambda, SafeError } from "postgraphile/grafast";

// Q4: default orderBy newest-first for audit_log connections
export const AuditLogNewestFirstPlugin: GraphileConfig.Plugin = {
  name: "AuditLogNewestFirstPlugin",
  version: "0.0.0",
  after: ["PgConnectionArgOrderByDefaultValuePlugin"],
  schema: {
    hooks: {
      GraphQLObjectType_fields_field_args_arg(arg, build, context) {
        const { argName, isPgFieldConnection, pgFieldResource } = context.scope;
        if (argName !== "orderBy" || !isPgFieldConnection || !pgFieldResource || pgFieldResource.parameters) return arg;
        const pg = pgFieldResource.codec.extensions?.pg;
        if (pg?.schemaName !== "app_public" || pg?.name !== "audit_log") return arg;
        const { inflection } = build;
        const OrderBy = build.getTypeByName(inflection.orderByType(inflection.tableType(pgFieldResource.codec))) as any;
        const desc = OrderBy?.getValues().find((v: any) => v.name === inflection.builtin("PRIMARY_KEY_DESC"));
        if (!desc) return arg;
        return { ...arg, defaultValue: [desc.value] };
      },
    },
  },
};

// Q5: cap first/last at 100 on every connection
const MAX_PAGE = 100;
export const MaxPageSizePlugin: GraphileConfig.Plugin = {
  name: "MaxPageSizePlugin",
  version: "0.0.0",
  after: ["PgFirstLastBeforeAfterArgsPlugin"],
  schema: {
    hooks: {
      GraphQLObjectType_fields_field_args_arg(arg, build, context) {
        const { argName, isPgFieldConnection } = context.scope;
        if (!isPgFieldConnection || (argName !== "first" && argName !== "last")) return arg;
        return {
          ...arg,
          description: `${arg.description ?? ""} At most ${MAX_PAGE}.`.trim(),
          applyPlan(_parent: any, $connection: any, fieldArg: any) {
            const $n = lambda(fieldArg.getRaw(), (raw) => {
              const n = raw as number | null | undefined;
              if (n != null && (n < 0 || n > MAX_PAGE)) {
                throw new SafeError(`'${argName}' must be between 0 and ${MAX_PAGE}`, { code: "PAGE_SIZE" });
              }
              return n;
            }, true);
            if (argName === "first") $connection.setFirst($n);
            else $connection.setLast($n);
          },
        };
      },
    },
  },
};

// Q6: depth limit as a GraphQL validation rule, added via grafserv middleware
export function maxDepthRule(maxDepth: number): ValidationRule {
  return (context: ValidationContext) => {
    const depthOf = (set: SelectionSetNode | undefined, seen: Set<string>): number => {
      if (!set) return 0;
      let max = 0;
      for (const sel of set.selections) {
        if (sel.kind === Kind.FIELD) {
          if (sel.name.value.startsWith("__")) continue; // introspection
          max = Math.max(max, 1 + depthOf(sel.selectionSet, seen));
        } else if (sel.kind === Kind.INLINE_FRAGMENT) {
          max = Math.max(max, depthOf(sel.selectionSet, seen));
        } else {
          const name = sel.name.value;
          if (seen.has(name)) continue;
          const frag = context.getFragment(name);
          max = Math.max(max, depthOf(frag?.selectionSet, new Set([...seen, name])));
        }
      }
      return max;
    };
    return {
      OperationDefinition(node) {
        const d = depthOf(node.selectionSet, new Set());
        if (d > maxDepth) {
          context.reportError(new GraphQLError(`Query is too deep (${d} > ${maxDepth}).`, { nodes: [node] }));
        }
      },
    };
  };
}
export const DepthLimitPlugin: GraphileConfig.Plugin = {
  name: "DepthLimitPlugin",
  version: "0.0.0",
  grafserv: {
    middleware: {
      setPreset(next, event) {
        event.validationRules.push(maxDepthRule(8));
        return next();
      },
    },
  },
};
