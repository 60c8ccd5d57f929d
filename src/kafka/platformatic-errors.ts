// @platformatic/kafka errors as Keyflow errors. The library wraps broker answers (ProtocolError, with
// the broker's error name as `apiId` and its own `canRetry`) in MultipleErrors/ResponseError trees;
// the innermost broker answers decide, as kafkajs's innermost cause does in kafkajs-errors.ts.
import { KeyflowError } from '../errors';
import { PRODUCER_FENCED_ANSWERS, refusedBy } from './broker-answers';

interface PlatformaticLikeError {
  code?: string;
  message?: string;
  apiId?: string;
  canRetry?: boolean;
  errors?: unknown[];
  cause?: unknown;
}

/**
 * Broker answers to a transaction that mean another member or producer owns the work now: the group
 * coordinator's generation check (KIP-447) or a newer producer epoch for the transactional id.
 */
export const FENCED = new Set([
  'FENCED_MEMBER_EPOCH',
  'UNKNOWN_MEMBER_ID',
  'ILLEGAL_GENERATION',
  'FENCED_INSTANCE_ID',
  ...PRODUCER_FENCED_ANSWERS,
]);

/** Library error codes that mean a broker did not answer. */
const OUTAGE_CODES = new Set(['PLT_KFK_NETWORK', 'PLT_KFK_TIMEOUT']);

/** Every error of the tree, depth first, the root first (bounded against cycles). */
export function errorTree(err: unknown): PlatformaticLikeError[] {
  const out: PlatformaticLikeError[] = [];
  const visit = (e: unknown, depth: number) => {
    if (!e || typeof e !== 'object' || depth > 8 || out.length > 64) return;
    const p = e as PlatformaticLikeError;
    out.push(p);
    for (const inner of p.errors ?? []) visit(inner, depth + 1);
    if (p.cause) visit(p.cause, depth + 1);
  };
  visit(err, 0);
  return out;
}

/** The broker's error names (ProtocolError.apiId) anywhere in the tree. */
export function brokerAnswers(err: unknown): string[] {
  return errorTree(err)
    .map((e) => e.apiId)
    .filter((id): id is string => typeof id === 'string');
}

function detail(err: unknown): string {
  const tree = errorTree(err);
  const answers = brokerAnswers(err);
  const root = tree[0]?.message ?? String(err);
  return answers.length > 0 ? `${root} (${[...new Set(answers)].join(', ')})` : root;
}

/** The Keyflow error for a failed send of `count` records. */
export function sendError(err: unknown, count: number): KeyflowError {
  if (err instanceof KeyflowError) return err;
  const what = `sending ${count} record(s) failed: ${detail(err)}`;
  for (const id of brokerAnswers(err)) {
    const refused = refusedBy(id);
    if (refused) return new KeyflowError(refused, what, { cause: err, retriable: false });
  }
  // A topic the metadata does not know is the library's own UserError, with no broker answer or code
  // of its own to tell it apart: its message is the only sign.
  if (errorTree(err).some((e) => e.code === 'PLT_KFK_USER' && /^Unknown topic /.test(e.message ?? '')))
    return new KeyflowError('TOPIC_UNKNOWN', what, { cause: err, retriable: false });
  // Any broker answer the library calls final (and no outage beside it) is final for us too;
  // anything else counts as a passing outage.
  const tree = errorTree(err);
  const final = tree.some((e) => e.apiId && e.canRetry === false);
  const outage = tree.some((e) => OUTAGE_CODES.has(e.code ?? ''));
  return new KeyflowError('PRODUCE_FAILED', what, { cause: err, retriable: outage || !final });
}

/** True when the error says this member or producer was fenced (see FENCED). */
export function isFenced(err: unknown): boolean {
  return brokerAnswers(err).some((id) => FENCED.has(id));
}

/**
 * Any error a library call threw, as a KeyflowError: an outage is UNREACHABLE, anything else keeps the
 * library's retry verdict. Errors that are not the library's pass through unchanged.
 */
export function fromPlatformatic(err: unknown): unknown {
  if (err instanceof KeyflowError) return err;
  const tree = errorTree(err);
  const code = tree[0]?.code ?? '';
  if (!code.startsWith('PLT_KFK_')) return err;
  const message = detail(err);
  if (tree.some((e) => OUTAGE_CODES.has(e.code ?? '')))
    return new KeyflowError('UNREACHABLE', message, { cause: err });
  const retriable = tree.some((e) => e.canRetry === true) && !tree.some((e) => e.canRetry === false);
  return new KeyflowError('PRODUCE_FAILED', message, { retriable, cause: err });
}

/** Runs a library call, its failure turned into a KeyflowError. */
export async function platformaticCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw fromPlatformatic(err);
  }
}
