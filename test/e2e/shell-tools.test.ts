// Ordinary tools on a real gfs mount: cp -a, diff -r, mv, rm -rf, ls -l, find, grep -r,
// tar round trip, rsync, dd conv=notrunc, truncate -s, ln / ln -s, chmod / chown / touch -d,
// mkdir -p, git init / commit / clone / fsck.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { sh, shOk, startTestCluster, type TestCluster } from './cluster.js';

let c: TestCluster;
let M: string;
let SRC: string; // a local source tree
let LOCAL: string; // local scratch

/** Builds 2,000 small files in nested dirs, a 1 GiB file, a symlink, an executable (the tree). */
async function makeSourceTree(dir: string): Promise<void> {
  await shOk(`
    set -e
    mkdir -p ${dir}/tree
    cd ${dir}/tree
    for d in $(seq 1 10); do
      mkdir -p d$d/sub
      for f in $(seq 1 100); do
        head -c $(( (d * 7919 + f * 104729) % 20000 )) /dev/urandom > d$d/f$f.bin
        echo "file $d/$f needle-$((d * f))" > d$d/sub/t$f.txt
      done
    done
    head -c $((1024 * 1024 * 1024)) /dev/urandom > big.bin
    echo '#!/bin/sh' > run.sh && chmod 755 run.sh
    ln -s d1/f1.bin link-to-f1
    : > empty
    chmod 600 d2/f2.bin
    touch -d '2001-02-03 04:05:06.123456789' d3/f3.bin
  `, { timeoutMs: 60_000 });
}

beforeAll(async () => {
  c = await startTestCluster({ chunkservers: 3, mount: true });
  M = c.mountDir;
  SRC = mkdtempSync(join(tmpdir(), 'gfs-e2e-src-'));
  LOCAL = mkdtempSync(join(tmpdir(), 'gfs-e2e-local-'));
  await makeSourceTree(SRC);
}, 120_000);

afterAll(async () => {
  await c?.stop();
  if (SRC) rmSync(SRC, { recursive: true, force: true });
  if (LOCAL) rmSync(LOCAL, { recursive: true, force: true });
});

/** Names, types, modes, sizes, mtimes (ns) and link targets of a tree, sorted. */
function listing(dir: string): Promise<string> {
  return shOk(`cd ${dir} && find . -mindepth 1 ! -type d -printf '%p %y %m %s %T@ %l\\n' | sort && find . -mindepth 1 -type d -printf '%p %y %m\\n' | sort`);
}

describe('gfs mount: shell tools', () => {
  test('cp -a of a tree (2,000 small files + 1 GiB) is identical by diff -r, modes and times', async () => {
    await shOk(`cp -a ${SRC}/tree ${M}/tree`, { timeoutMs: 420_000 });
    const d = await sh(`diff -r ${SRC}/tree ${M}/tree`, { timeoutMs: 240_000 });
    if (d.code !== 0) {
      // Whether it lasts, and what the mount logged, tell a stale cache from lost data.
      const later = await sh(`sleep 3; diff -r ${SRC}/tree ${M}/tree | head -20; grep -h '"level":[45]' ${c.dir}/mount*.log | tail -20`, { timeoutMs: 240_000 });
      throw new Error(`diff -r failed (${d.code}):\n${d.stdout.slice(0, 3000)}${d.stderr}\n3 s later:\n${later.stdout}`);
    }
    expect(await listing(`${M}/tree`)).toBe(await listing(`${SRC}/tree`));
    const ls = await shOk(`ls -l ${M}/tree | tail -n +2 | wc -l; ls -l ${M}/tree/big.bin | awk '{print $5}'`);
    expect(ls.trim().split('\n')).toEqual(['14', String(1024 * 1024 * 1024)]);
  }, 720_000);

  test('find and grep -r see everything', async () => {
    const n = await shOk(`find ${M}/tree -type f | wc -l; find ${M}/tree -type d | wc -l; find ${M}/tree -name 't7.txt' | wc -l`);
    expect(n.trim().split('\n')).toEqual(['2003', '21', '10']);
    const g = await shOk(`grep -rlw 'needle-42' ${M}/tree | sort`);
    expect(g.trim().split('\n').map((p) => p.slice(M.length))).toEqual([
      '/tree/d1/sub/t42.txt', '/tree/d2/sub/t21.txt', '/tree/d3/sub/t14.txt', '/tree/d6/sub/t7.txt', '/tree/d7/sub/t6.txt',
    ]);
  });

  test('tar -c / tar -x round trip', async () => {
    await shOk(`tar -C ${M} -cf ${M}/t.tar tree/d1 tree/d2 tree/run.sh tree/link-to-f1 && mkdir ${M}/untar && tar -C ${M}/untar -xpf ${M}/t.tar`, { timeoutMs: 60_000 });
    await shOk(`diff -r ${SRC}/tree/d1 ${M}/untar/tree/d1 && diff -r ${SRC}/tree/d2 ${M}/untar/tree/d2 && test "$(readlink ${M}/untar/tree/link-to-f1)" = d1/f1.bin`);
    await shOk(`tar -C ${M} -cf - tree/d3 | tar -C ${LOCAL} -xf - && diff -r ${SRC}/tree/d3 ${LOCAL}/tree/d3`);
  });

  test('mv within and across directories; rm -rf', async () => {
    await shOk(`cd ${M} && mkdir mv && cp tree/d1/f1.bin mv/a && mv mv/a mv/b && mkdir mv/sub && mv mv/b mv/sub/c &&
      mv mv/sub mv/sub2 && cmp mv/sub2/c ${SRC}/tree/d1/f1.bin && test ! -e mv/a && test ! -e mv/sub`);
    await shOk(`cd ${M} && echo one > mv/x && echo two > mv/y && mv -f mv/y mv/x && test "$(cat mv/x)" = two && test ! -e mv/y`);
    await shOk(`rm -rf ${M}/untar ${M}/mv && test ! -e ${M}/untar && test ! -e ${M}/mv`);
    expect((await shOk(`ls -A ${M} | sort`)).trim().split('\n')).toEqual(['t.tar', 'tree']);
  });

  test('dd conv=notrunc in the middle of a file; truncate -s', async () => {
    await shOk(`
      set -e
      head -c 3000000 /dev/urandom > ${LOCAL}/f && cp ${LOCAL}/f ${M}/f
      head -c 100000 /dev/urandom > ${LOCAL}/patch
      dd if=${LOCAL}/patch of=${LOCAL}/f bs=1000 seek=1234 conv=notrunc status=none
      dd if=${LOCAL}/patch of=${M}/f bs=1000 seek=1234 conv=notrunc status=none
      cmp ${LOCAL}/f ${M}/f
      for s in 5000000 1234567 0 4097; do
        truncate -s $s ${LOCAL}/f; truncate -s $s ${M}/f
        test "$(stat -c %s ${M}/f)" = $s
        cmp ${LOCAL}/f ${M}/f
      done
    `, { timeoutMs: 60_000 });
  });

  test('ln and ln -s; chmod, chown, touch -d; mkdir -p deep', async () => {
    const out = await shOk(`
      set -e
      cd ${M}
      echo hi > orig && ln orig hard && ln -s orig soft && ln -s /nowhere/at/all dangling
      echo "$(stat -c %h orig) $(stat -c %h hard) $(readlink soft) $(cat soft) $(readlink dangling)"
      test "$(stat -c %i orig)" = "$(stat -c %i hard)"
      chown 1234:5678 orig && chmod 4750 orig
      touch -d '2040-05-06 07:08:09.987654321' orig
      stat -c '%a %u %g %y' hard
      touch -h -d '1999-01-01 00:00:00' soft; stat -c '%y' soft
      chown 1234 hard && stat -c %a orig  # chown of an executable clears set-uid (Linux, even for root)
      rm orig && stat -c %h hard
      mkdir -p deep/$(printf 'level%02d/' $(seq 1 40)) && test -d deep/level01/level20/level40 2>/dev/null || test -d "deep/$(printf 'level%02d/' $(seq 1 40))"
      echo ok
    `);
    expect(out.trim().split('\n')).toEqual([
      '2 2 orig hi /nowhere/at/all',
      '4750 1234 5678 2040-05-06 07:08:09.987654321 +0000',
      '1999-01-01 00:00:00.000000000 +0000',
      '750',
      '1',
      'ok',
    ]);
  });

  test('rsync -a --checksum round trip', async () => {
    const have = await sh('command -v rsync');
    expect(have.code, 'rsync must be installed (scripts/build-fuse-native.sh installs it)').toBe(0);
    await shOk(`rsync -a --checksum ${SRC}/tree/d4 ${SRC}/tree/d5 ${SRC}/tree/link-to-f1 ${M}/rs/ && diff -r ${SRC}/tree/d4 ${M}/rs/d4 && diff -r ${SRC}/tree/d5 ${M}/rs/d5`, { timeoutMs: 60_000 });
    // A second run finds nothing to transfer; a changed file is transferred again.
    const again = await shOk(`rsync -a --checksum --itemize-changes ${SRC}/tree/d4 ${M}/rs/ | wc -l`);
    expect(again.trim()).toBe('0');
    await shOk(`rsync -a --checksum ${M}/rs/ ${LOCAL}/rs/ && diff -r --no-dereference ${M}/rs ${LOCAL}/rs`, { timeoutMs: 60_000 });
    expect(await listing(`${LOCAL}/rs/d4`)).toBe(await listing(`${SRC}/tree/d4`));
  });

  test('git init, commit, clone onto the mount, fsck', async () => {
    const env = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com', HOME: LOCAL };
    const out = await shOk(`
      set -e
      git init -q ${M}/repo
      cd ${M}/repo
      cp -r ${SRC}/tree/d6 ${SRC}/tree/d7 .
      git add -A && git commit -q -m first
      echo more >> d6/sub/t1.txt && git commit -q -am second
      git gc -q
      git clone -q ${M}/repo ${M}/clone
      cd ${M}/clone
      git fsck --full --strict 2>&1
      git log --oneline | wc -l
      diff -r ${M}/repo/d6 ${M}/clone/d6 && diff -r ${M}/repo/d7 ${M}/clone/d7
      git status --porcelain | wc -l
    `, { env, timeoutMs: 90_000 });
    expect(out.trim().split('\n').slice(-2)).toEqual(['2', '0']);
  }, 120_000);
});
