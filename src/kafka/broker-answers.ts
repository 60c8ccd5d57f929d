// What a broker's error answer means to Keyflow, by the protocol's error name: shared by every client
// adapter, so a refused record or a fenced producer is told apart the same way whichever library sent.

export type RefusedCode = 'RECORD_TOO_LARGE' | 'PRODUCE_NOT_AUTHORIZED' | 'TOPIC_UNKNOWN';

/** Answers that refuse the records themselves: retrying will not help, the stage's policy decides. */
const REFUSED: Record<string, RefusedCode> = {
  MESSAGE_TOO_LARGE: 'RECORD_TOO_LARGE',
  RECORD_LIST_TOO_LARGE: 'RECORD_TOO_LARGE',
  INVALID_RECORD: 'RECORD_TOO_LARGE',
  TOPIC_AUTHORIZATION_FAILED: 'PRODUCE_NOT_AUTHORIZED',
  CLUSTER_AUTHORIZATION_FAILED: 'PRODUCE_NOT_AUTHORIZED',
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 'PRODUCE_NOT_AUTHORIZED',
  UNKNOWN_TOPIC_OR_PARTITION: 'TOPIC_UNKNOWN',
  UNKNOWN_TOPIC_ID: 'TOPIC_UNKNOWN',
};

/** The Keyflow code for an answer that refuses the records, or undefined for any other answer. */
export function refusedBy(answer: string | undefined): RefusedCode | undefined {
  return answer === undefined ? undefined : REFUSED[answer];
}

/** Answers meaning a newer producer holds the transactional id, or the broker expired ours. */
export const PRODUCER_FENCED_ANSWERS: ReadonlySet<string> = new Set([
  'PRODUCER_FENCED',
  'INVALID_PRODUCER_EPOCH',
  'INVALID_PRODUCER_ID_MAPPING',
]);
