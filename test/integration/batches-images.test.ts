// An image's current batch only moves forward: when the writes of an older batch land after those of a
// newer one (two batches of the same asset created concurrently), the newer batch id stays. A named
// query's list of asset ids is read in pages, each asset once, and refused past its cap.
import { COLLECTIONS, imageId } from '../../src/batches/names';
import { assetIdsOfBatches, imagesMatching } from '../../src/batches/images';
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

test('a named query’s id list is read in pages, without repeats, and refused past its cap', async () => {
  const { db } = await freshDb();
  const now = new Date();
  const assets = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, i) => ({
      id: `a${String(from + i).padStart(3, '0')}`,
      origin: 'https://x/a.png',
    }));
  const one = await createBatch(db, 'acme', assets(0, 7), now);
  const two = await createBatch(db, 'acme', assets(4, 12), now); // a004..a006 are in both
  await createBatch(db, 'rival', assets(0, 12), now);

  // Pages of 3 rows cut through the repeated assets; each asset comes once, in order.
  const ids = await assetIdsOfBatches(db, 'acme', [one._id, two._id], { idPage: 3 });
  expect(ids).toEqual(assets(0, 12).map((a) => a.id));
  const page = await imagesMatching(db, 'acme', { batchIds: [one._id, two._id] }, 2, 5, { idPage: 3 });
  expect(page.total).toBe(12);
  expect(page.items.map((i) => i.assetId)).toEqual(['a005', 'a006', 'a007', 'a008', 'a009']);

  await expect(
    imagesMatching(db, 'acme', { batchIds: [one._id, two._id] }, 1, 5, { idPage: 3, maxAssets: 11 }),
  ).rejects.toMatchObject({ code: 'QUERY_TOO_BROAD', message: /more than 11 assets; name fewer batches/ });
  await expect(assetIdsOfBatches(db, 'acme', [one._id], { maxAssets: 7 })).resolves.toHaveLength(7);
});
