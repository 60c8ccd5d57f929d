// `keyflow dlq list|replay <stage>`: inspect dead letters and re-drive them into their key's lane.
import { loadConfig } from '../config';
import { listLetters, type LetterStatus } from '../state/dead-letters';
import { redrive } from '../consumers/redrive';
import { KeyflowError } from '../errors';
import { kafkaClient } from '../producers/client';
import { KeyedProducer } from '../producers/producer';
import { connectStore } from '../state/mongo';
import { createLogger } from '../logger';
import { defineCommand, usageError, wholeNumber } from './args';

const STATUSES: LetterStatus[] = ['parked', 'dead', 'redriven', 'resolved'];

export const dlqCommand = defineCommand({
  name: 'dlq',
  operands: 'list|replay <stage>',
  summary: 'list a stage’s dead letters, or re-drive them (all, or one key’s) in their original order',
  options: {
    key: { type: 'string', value: 'K', doc: 'only the letters of this key' },
    status: { type: 'string', value: 'S', doc: `list: only letters in this status (${STATUSES.join(', ')})` },
    limit: { type: 'string', value: 'N', doc: 'at most N letters (list: default 100; replay: all)' },
    json: { type: 'boolean', doc: 'list: print the letters as JSON' },
  },
  async run({ values, positionals }) {
    const [action, stage, ...extra] = positionals;
    if ((action !== 'list' && action !== 'replay') || !stage || extra.length > 0) {
      throw usageError(dlqCommand);
    }
    const { status, key } = values;
    const limit = wholeNumber(values.limit, 'limit');
    if (status !== undefined && !STATUSES.includes(status as LetterStatus)) {
      throw new KeyflowError('USAGE', `--status must be one of ${STATUSES.join(', ')}`);
    }
    const config = loadConfig(process.env, { require: action === 'list' ? ['mongoUrl'] : undefined });
    const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
    const store = await connectStore(config, log);
    try {
      if (action === 'list') {
        const letters = await listLetters(store.db, stage, {
          key,
          status: status ? [status as LetterStatus] : undefined,
          limit: limit ?? 100,
        });
        if (values.json) {
          const rows = letters.map(({ value, ...rest }) => ({ ...rest, bytes: value?.length() ?? 0 }));
          process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        } else {
          process.stdout.write(`${letters.length} letter(s) for ${stage}\n`);
          for (const l of letters) {
            process.stdout.write(
              `${l.status.padEnd(9)} key=${l.key ?? '(none)'} event=${l.eventId} ${l.code} attempts=${l.attempts} ` +
                `from=${l.topic}/${l.partition}@${l.offset} dead=${l.deadAt.toISOString()} — ${l.message}\n`,
            );
          }
        }
        return 0;
      }
      // The command prints its own lines; the client's warnings would only interleave with them.
      const kafka = kafkaClient(config, createLogger('silent'), `${config.kafkaClientId}-dlq`);
      // Dead letters carry their original bytes, so re-driving needs no encoder.
      const producer = new KeyedProducer(kafka, {
        encode: () => Promise.reject(new KeyflowError('USAGE', 're-drive sends original bytes only')),
      });
      try {
        const result = await redrive({ db: store.db, producer, stage, key, limit });
        process.stdout.write(
          `re-drove ${result.redriven} letter(s) of ${stage}${key ? ` for key ${key}` : ''}\n`,
        );
        for (const s of result.skipped) process.stdout.write(`skipped ${s.id}: ${s.reason}\n`);
      } finally {
        await producer.close();
      }
      return 0;
    } finally {
      await store.close();
    }
  },
});
