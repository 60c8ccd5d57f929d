// `keyflow schemas check [--schemas DIR]`: would the registry take the project's schemas, and whom
// would a refused one break. Exits 1 on an incompatible schema, so a producer's CI can gate a deploy.
import { appTopology } from '../app/topology';
import { loadConfig } from '../config';
import { checkSchemas, renderChecks, schemasFromDir, type ProjectSchema } from '../schemas/check';
import { defineCommand, usageError } from './args';

export const schemasCommand = defineCommand({
  name: 'schemas',
  operands: 'check',
  summary: 'check the topics’ schemas against the registry’s subjects; exit 1 if one is incompatible',
  options: {
    schemas: {
      type: 'string',
      value: 'DIR',
      doc: 'check the <topic>.avsc files in DIR instead of the schemas the topology declares',
    },
  },
  notes: [
    'Each subject (<topic>-value) is checked under its own compatibility level, else the global one.',
    'Nothing is registered. Exit codes: 0 every schema is new, unchanged or compatible; 1 one is not.',
  ],
  async run({ values, positionals }) {
    if (positionals.length !== 1 || positionals[0] !== 'check') throw usageError(schemasCommand);
    const config = loadConfig(process.env, { require: ['schemaRegistryUrl'] });
    const topology = appTopology(config);
    const schemas: ProjectSchema[] = values.schemas
      ? schemasFromDir(values.schemas)
      : topology.topics.flatMap((t) => (t.value ? [{ topic: t.name, avro: t.value.avro }] : []));
    const auth = config.schemaRegistryAuth;
    const colon = auth?.indexOf(':') ?? -1;
    const checks = await checkSchemas(
      {
        url: config.schemaRegistryUrl,
        ...(auth ? { auth: { username: auth.slice(0, colon), password: auth.slice(colon + 1) } } : {}),
      },
      schemas,
    );
    const readers = (topic: string) =>
      topology.stages.filter((s) => s.inputs.includes(topic)).map((s) => s.name);
    process.stdout.write(renderChecks(checks, readers));
    return checks.some((c) => c.verdict === 'incompatible') ? 1 : 0;
  },
});
