// `keyflow dlq list|replay|discard <stage>`: inspect dead letters, re-drive them into their key's lane,
// or give one up (bytes no re-drive can fix) so the key's later letters can follow.
import { userInfo } from 'node:os';
import { loadConfig } from '../config';
import { discardLetter, listLetters, type LetterStatus } from '../state/dead-letters';
import { redrive } from '../consumers/redrive';
import { KeyflowError } from '../errors';
import { kafkaClient } from '../kafka/client';
import { KeyedProducer } from '../producers/producer';
import { connectStore } from '../state/mongo';
import { createLogger } from '../logger';
import { defineCommand, usageError, wholeNumber } from './args';

const STATUSES: LetterStatus[] = ['parked', 'dead', 'redriven', 'resolved'];

export const dlqCommand = defineCommand({
  name: 'dlq',
  operands: 'list|replay|discard <stage>',
  summary:
    'list a stage’s dead letters, re-drive them (all, or one key’s) in their original order, or discard one',
  options: {
    key: { type: 'string', value: 'K', doc: 'only the letters of this key' },
    status: { type: 'string', value: 'S', doc: `list: only letters in this status (${STATUSES.join(', ')})` },
    limit: { type: 'string', value: 'N', doc: 'at most N letters (list: default 100; replay: all)' },
    json: { type: 'boolean', doc: 'list: print the letters as JSON' },
    letter: { type: 'string', value: 'ID', doc: 'discard: this letter' },
    reason: { type: 'string', value: 'TEXT', doc: 'discard: why (recorded with who and when)' },
  },
  async run({ values, positionals }) {
    const [action, stage, ...extra] = positionals;
    if ((action !== 'list' && action !== 'replay' && action !== 'discard') || !stage || extra.length > 0) {
      throw usageError(dlqCommand);
    }
    if (action === 'discard') {
      if ((values.letter === undefined) === (values.key === undefined)) {
        throw new KeyflowError('USAGE', 'discard needs exactly one of --letter ID or --key K');
      }
      if (!values.reason?.trim()) throw new KeyflowError('USAGE', 'discard needs --reason "why"');
    }
    const { status, key } = values;
    const limit = wholeNumber(values.limit, 'limit');
    if (status !== undefined && !STATUSES.includes(status as LetterStatus)) {
      throw new KeyflowError('USAGE', `--status must be one of ${STATUSES.join(', ')}`);
    }
    const config = loadConfig(process.env, { require: action === 'replay' ? undefined : ['mongoUrl'] });
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
      if (action === 'discard') {
        const letter = await discardLetter(store.db, {
          stage,
          target: values.letter !== undefined ? { letter: values.letter } : { key: key! },
          by: `cli:${userInfo().username}`,
          reason: values.reason!.trim(),
          retentionMs: config.deadLetterRetentionDays * 24 * 3600 * 1000,
        });
        process.stdout.write(
          `discarded ${letter._id} (key=${letter.key ?? '(none)'} ${letter.code}); ` +
            `the key's later letters can be re-driven\n`,
        );
        return 0;
      }
      // The command prints its own lines; the client's warnings would only interleave with them.
      const kafka = kafkaClient(config, createLogger('silent'), `${config.kafkaClientId}-dlq`);
      // Dead letters carry their original bytes, so re-driving needs no encoder.
      const producer = new KeyedProducer(kafka, {
        encode: () => Promise.reject(new KeyflowError('USAGE', 're-drive sends original bytes only')),
      });
      try {
        const result = await redrive({
          db: store.db,
          producer,
          stage,
          key,
          limit,
          staleRedrivenMs: config.redriveStaleMs,
        });
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
