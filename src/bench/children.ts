// What the bench's runs of real processor children share (the scaling curve, the memory run): a fault-
// suite context whose children speak the Kafka client measured, and a rig opened and closed around a body.
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { demoConfig } from '../app/demo/run';
import { loadConfig } from '../config';
import { closeRig, openRig, type EventSetSpec, type FaultContext, type Rig } from '../faults/rig';
import { kafkaClient } from '../kafka/client';
import { kafkajsInstance } from '../kafka/kafkajs-client';
import type { Logger } from '../logger';
import { RegistryCodec } from '../schemas/codec';
import { kafka as kafkaService } from '../services/kafka';
import { mongo as mongoService } from '../services/mongo';
import { registry as registryService } from '../services/registry';
import { stackContext } from '../services/stack';
import type { ScalingClient } from './scaling-report';

export interface ChildRunOptions {
  log: Logger;
  out: (line: string) => void;
  resultsDir?: string;
}

export async function childContext(
  opts: ChildRunOptions,
  client: ScalingClient,
  label: string,
): Promise<FaultContext> {
  const demo = await demoConfig(opts.out);
  const { services } = demo;
  const config = { ...demo.config, kafkaAdapter: client };
  const stack = stackContext(loadConfig(process.env, { require: [] }));
  // Children inherit the environment; with the local stack they are told its endpoints too.
  const stackEnv =
    services === 'environment'
      ? {}
      : {
          ...kafkaService.endpoint(stack).env,
          ...registryService.endpoint(stack).env,
          ...mongoService.endpoint(stack).env,
        };
  const resultsDir = path.resolve(opts.resultsDir ?? path.join('bench', 'results'));
  fs.mkdirSync(resultsDir, { recursive: true });
  const mongo = new MongoClient(config.mongoUrl);
  await mongo.connect();
  return {
    config,
    stack,
    // The children speak the client measured; the harness's own publishing stays on kafkajs.
    stackEnv: { ...stackEnv, KEYFLOW_KAFKA_CLIENT: client },
    quick: false,
    resultsDir,
    out: opts.out,
    kafka: kafkajsInstance(config, opts.log, `${config.kafkaClientId}-${label}`),
    membership: kafkaClient(config, opts.log, `${config.kafkaClientId}-${label}-membership`).offsets(),
    codec: new RegistryCodec({ url: config.schemaRegistryUrl, auth: config.schemaRegistryAuth }),
    mongo,
    log: opts.log,
    runId: `s${Date.now().toString(36)}`,
    scenario: { partitions: 6 },
  };
}

/** Closes what childContext opened. */
export async function closeChildContext(ctx: FaultContext): Promise<void> {
  await ctx.mongo.close();
  await ctx.membership.close();
}

export async function withRig<T>(
  ctx: FaultContext,
  partitions: number,
  label: string,
  spec: EventSetSpec,
  body: (rig: Rig) => Promise<T>,
): Promise<T> {
  const rig = await openRig({ ...ctx, scenario: { partitions } }, label, spec);
  try {
    return await body(rig);
  } finally {
    await closeRig(rig);
  }
}
