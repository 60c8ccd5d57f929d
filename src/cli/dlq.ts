// `keyflow dlq list|replay <stage>`: inspect dead letters and re-drive them into their key's lane.
import { loadConfig } from '../config';
import { listLetters, type LetterStatus } from '../state/dead-letters';
import { redrive } from '../consumers/redrive';
import { KeyflowError } from '../errors';
import { kafkaClient } from '../producers/client';
import { KeyedProducer } from '../producers/producer';
import { connectStore } from '../state/mongo';
import { createLogger } from '../logger';
import { flag, has, intFlag, positionals } from './args';
import type { Command } from './main';

const STATUSES: LetterStatus[] = ['parked', 'dead', 'redriven', 'resolved'];

export const dlqCommand: Command = {
  usage: 'dlq list|replay <stage> [--key K] [--status s] [--limit N] [--json]',
  summary: 'list a stage’s dead letters, or re-drive them (all, or one key’s) in their original order',
  async run(args) {
    const [action, stage] = positionals(args, ['--key', '--status', '--limit']);
    if ((action !== 'list' && action !== 'replay') || !stage) {
      throw new KeyflowError('USAGE', `usage: keyflow ${this.usage}`);
    }
    const status = flag(args, '--status');
    if (status !== undefined && !STATUSES.includes(status as LetterStatus)) {
      throw new KeyflowError('USAGE', `--status must be one of ${STATUSES.join(', ')}`);
    }
    const config = loadConfig(process.env, { require: action === 'list' ? ['mongoUrl'] : undefined });
    const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
    const store = await connectStore(config, log);
    try {
      const key = flag(args, '--key');
      if (action === 'list') {
        const letters = await listLetters(store.db, stage, {
          key,
          status: status ? [status as LetterStatus] : undefined,
          limit: intFlag(args, '--limit') ?? 100,
        });
        if (has(args, '--json')) {
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
        const result = await redrive({ db: store.db, producer, stage, key, limit: intFlag(args, '--limit') });
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
};
