// `keyflow customers create <customerId>`: creates the customer (if new) and a fresh API key. The key is
// printed once, as the last line, and only its hash is stored.
import { loadConfig } from '../config';
import { customerIdSchema } from '../batches/schemas';
import { createCustomerKey } from '../customers/keys';
import { KeyflowError } from '../errors';
import { createLogger } from '../logger';
import { connectStore } from '../state/mongo';
import { defineCommand, usageError } from './args';

export const customersCommand = defineCommand({
  name: 'customers',
  operands: 'create <customerId>',
  summary: 'create a customer (if new) and print a new API key for it as the last line',
  options: {},
  async run({ positionals }) {
    const [action, customerId, ...extra] = positionals;
    if (action !== 'create' || customerId === undefined || extra.length > 0) {
      throw usageError(customersCommand);
    }
    const id = customerIdSchema.safeParse(customerId);
    if (!id.success) {
      throw new KeyflowError(
        'USAGE',
        `customerId ${JSON.stringify(customerId)} ${id.error.issues[0]?.message}`,
      );
    }
    const config = loadConfig(process.env, { require: ['mongoUrl'] });
    const store = await connectStore(config, createLogger(process.env.LOG_LEVEL ?? 'warn'));
    try {
      const { key, newCustomer } = await createCustomerKey(store.db, id.data);
      process.stdout.write(
        `${newCustomer ? 'created customer' : 'added a key to customer'} ${id.data}\n` +
          'the key is shown only now; send it as "Authorization: Bearer <key>":\n' +
          `${key}\n`,
      );
      return 0;
    } finally {
      await store.close();
    }
  },
});
