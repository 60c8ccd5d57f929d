// What `keyflow services up` runs for KEYFLOW_MONGO_SERVER=secantusdb: a virtualenv per pinned release in
// the cache, pip limited to that release's wheel, and a daemon bound to loopback that reads no stray config.
import path from 'node:path';
import {
  SECANTUSDB_VERSION,
  secantusInstallSteps,
  secantusStartArgs,
  secantusVenv,
} from '../../src/services/mongo';

test('the virtualenv lives in the cache under the pinned release', () => {
  expect(SECANTUSDB_VERSION).toMatch(/^\d+\.\d+\.\d+((a|b|rc)\d+)?$/);
  expect(secantusVenv('/c')).toBe(path.join('/c', `secantusdb-${SECANTUSDB_VERSION}`, 'venv'));
});

test('install creates the venv with the given python, then pip-installs exactly the pinned wheel', () => {
  const steps = secantusInstallSteps('/c/venv', 'python3');
  expect(steps).toEqual([
    { command: 'python3', args: ['-m', 'venv', '/c/venv'] },
    {
      command: path.join('/c/venv', 'bin', 'python'),
      args: [
        '-m',
        'pip',
        'install',
        '--no-input',
        '--disable-pip-version-check',
        '--only-binary=secantusdb',
        `secantusdb==${SECANTUSDB_VERSION}`,
      ],
    },
  ]);
});

test('the daemon binds 127.0.0.1 on our port and data folder, with an explicit config file', () => {
  const args = secantusStartArgs({
    port: 37117,
    dataDir: '/s/data/secantusdb',
    configFile: '/s/data/secantusd.toml',
  });
  expect(args).toEqual(
    expect.arrayContaining([
      '--host=127.0.0.1',
      '--port=37117',
      '--storage-path=/s/data/secantusdb',
      '--config=/s/data/secantusd.toml',
    ]),
  );
  // No --standalone: the replica-set advertisement is what enables transactions and change streams.
  expect(args).not.toContain('--standalone');
});
