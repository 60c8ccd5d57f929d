// `keyflow changes verify <topic>`: reads a change topic with read_committed and checks the changelog
// rule against the table it mirrors. Exit 0 for a faithful changelog, 1 when it finds any problem.
import { loadConfig } from '../config';
import { KNOWN_CHANGE_TOPICS, sourceOf, verifyTopic } from '../changes/kafkajs-read';
import { hasProblems, reportText } from '../changes/verify';
import { createLogger } from '../logger';
import { kafkajsInstance } from '../kafka/kafkajs-client';
import { connectStore } from '../state/mongo';
import { defineCommand, usageError } from './args';

export const changesCommand = defineCommand({
  name: 'changes',
  operands: 'verify <topic>',
  summary:
    'read a change topic (read_committed) and check it against its table: duplicates, gaps, rows whose last change differs; exit 1 if any',
  options: {
    json: { type: 'boolean', doc: 'print the report as JSON' },
  },
  notes: [
    `Topics: ${KNOWN_CHANGE_TOPICS.join(', ')} (or one under a prefix, <prefix>.<topic>).`,
    'The table is read from MONGO_URL / MONGO_DB. Exit 0 when the topic is a faithful changelog, 1 otherwise.',
  ],
  async run({ values, positionals }) {
    const [action, topic, ...extra] = positionals;
    if (action !== 'verify' || !topic || extra.length > 0) throw usageError(changesCommand);
    sourceOf(topic); // an unknown topic is a usage mistake, refused before anything connects
    const config = loadConfig(process.env);
    const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
    const store = await connectStore(config, log);
    try {
      const { report, shortOf } = await verifyTopic({
        kafka: kafkajsInstance(config, log, 'keyflow-changes-verify'),
        brokers: config.kafkaBrokers,
        registryUrl: config.schemaRegistryUrl,
        registryAuth: config.schemaRegistryAuth,
        db: store.db,
        topic,
      });
      if (values.json === true) {
        process.stdout.write(`${JSON.stringify({ topic, ...report, shortOf }, null, 2)}\n`);
      } else {
        process.stdout.write(`${reportText(topic, report)}\n`);
        for (const s of shortOf) process.stdout.write(`  not read to its end: ${s}\n`);
      }
      return hasProblems(report) || shortOf.length > 0 ? 1 : 0;
    } finally {
      await store.close();
    }
  },
});
