// An image's current batch only moves forward: when the writes of an older batch land after those of a
// newer one (two batches of the same asset created concurrently), the newer batch id stays.
import { COLLECTIONS, imageId } from '../../src/batches/names';
import { createBatch, type ImageDoc } from '../../src/batches/store';
import { cleanupAll, freshDb } from '../helpers';

jest.setTimeout(60_000);
afterAll(cleanupAll);

test('Images.batch keeps the newer batch when an older batch writes late', async () => {
  const { db } = await freshDb();
  const images = db.collection<ImageDoc>(COLLECTIONS.images);
  const now = new Date();
  const older = await createBatch(db, 'acme', [{ id: 'a', origin: 'https://cdn.example/a-v1.png' }], now);
  expect((await images.findOne({ _id: imageId('acme', 'a') }))?.batch).toBe(older._id);

  // A newer batch of asset a whose image write landed first: the image already names it.
  const newer = older._id + 1000;
  await images.updateOne(
    { _id: imageId('acme', 'a') },
    { $set: { batch: newer, origin: 'https://cdn.example/a-v2.png', status: 'completed' } },
  );
  // The late batch (allocated between older and newer) must neither take the image back nor touch it.
  const late = await createBatch(
    db,
    'acme',
    [
      { id: 'a', origin: 'https://cdn.example/a-late.png' },
      { id: 'b', origin: 'https://cdn.example/b.png' },
    ],
    now,
  );
  expect(late._id).toBeLessThan(newer);
  expect(await images.findOne({ _id: imageId('acme', 'a') })).toMatchObject({
    batch: newer,
    origin: 'https://cdn.example/a-v2.png',
    status: 'completed',
  });
  // An image the late batch is the newest for is still created and pointed at it.
  expect(await images.findOne({ _id: imageId('acme', 'b') })).toMatchObject({
    batch: late._id,
    status: 'waiting',
  });
});
