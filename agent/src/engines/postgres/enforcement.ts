/**
 * Fail closed: before a session is relayed, checks that this engine can enforce every part of
 * the connection's policy (every statement kind, rule, detector and strategy is one it knows,
 * and the SQL parser is loaded when guardrails or masking need it). Anything else refuses the
 * session with POLICY_UNENFORCEABLE, naming the rule, and a FATAL ErrorResponse to the client.
 */
import {
  detectorNames,
  guardrailRules,
  maskStrategies,
  type Policy,
  policyInspectsContent,
  statementKinds,
} from '@hoop/shared';
import { PgFailure, PostgresEngineError } from './errors.js';
import { SqlState } from './messages.js';
import type { SqlParse } from './sql.js';

export function unenforceable(rule: string, why: string): PostgresEngineError {
  const message = `the connection's policy cannot be enforced by the postgres engine: ${rule}: ${why}`;
  return new PostgresEngineError(
    'POLICY_UNENFORCEABLE',
    PgFailure.policyUnenforceable,
    'client',
    message,
    {
      response: {
        severity: 'FATAL',
        code: SqlState.featureNotSupported,
        message: `hoop: ${message}`,
      },
      hint: 'Ask an admin to fix the connection policy or upgrade the agent.',
    },
  );
}

/** Throws a PostgresEngineError (POLICY_UNENFORCEABLE) for the first part hoop cannot enforce. */
export function checkEnforceable(policy: Policy): void {
  const known = <T extends string>(list: readonly T[], value: unknown): boolean =>
    typeof value === 'string' && (list as readonly string[]).includes(value);
  (policy.guardrails?.deny ?? []).forEach((entry, i) => {
    const e = entry as Record<string, unknown>;
    if (Array.isArray(e['statements'])) {
      for (const kind of e['statements']) {
        if (!known(statementKinds, kind)) {
          throw unenforceable(
            `guardrails.deny[${i}] statements: ${String(kind)}`,
            'unknown statement kind',
          );
        }
      }
    } else if (e['rule'] !== undefined) {
      if (!known(guardrailRules, e['rule'])) {
        throw unenforceable(`guardrails.deny[${i}] rule: ${String(e['rule'])}`, 'unknown rule');
      }
    } else if (Array.isArray(e['functions'])) {
      for (const f of e['functions']) {
        if (typeof f !== 'string' || f.length === 0) {
          throw unenforceable(`guardrails.deny[${i}] functions`, 'not a function name');
        }
      }
    } else {
      throw unenforceable(`guardrails.deny[${i}]`, 'unknown kind of guardrail');
    }
  });
  for (const d of policy.masking?.detectors ?? []) {
    if (!known(detectorNames, d))
      throw unenforceable(`masking.detectors: ${String(d)}`, 'unknown detector');
  }
  for (const c of policy.masking?.columns ?? []) {
    if (!known(maskStrategies, c.strategy)) {
      throw unenforceable(`masking.columns ${c.column}`, `unknown strategy ${String(c.strategy)}`);
    }
    if (c.column.split('.').length !== 3) {
      throw unenforceable(`masking.columns ${c.column}`, 'not schema.table.column');
    }
  }
}

/** Loads the SQL parser when the policy needs it; a load failure refuses the session. */
export async function parserFor(
  policy: Policy,
  load: () => Promise<SqlParse>,
): Promise<SqlParse | undefined> {
  if (!policyInspectsContent(policy)) {
    // Recording only: the parser is not needed (statements are recorded as sent).
    return undefined;
  }
  try {
    return await load();
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const rule = policy.guardrails?.deny.length ? 'guardrails' : 'masking';
    throw unenforceable(rule, `the SQL parser (libpg-query) could not be loaded: ${why}`);
  }
}
