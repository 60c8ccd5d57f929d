// The local stack's readiness probe for Kafka, through kafkajs: one quick admin call, no retries.
import { Kafka, logLevel } from 'kafkajs';

/** True when the broker at `broker` answers metadata listing at least one registered broker. */
export async function brokerServes(broker: string): Promise<boolean> {
  const admin = new Kafka({
    clientId: 'keyflow-services-probe',
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 2000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    // Metadata lists only registered, unfenced brokers, so a broker here can actually serve requests.
    const { brokers } = await admin.describeCluster();
    return brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
