// Edge cases of POSIX/Linux semantics through a real mount, beside the ones posix.test.ts
// checks by topic: renames of directories, hard links and symlink limits, the times each
// change marks, set-id bits on chown/write/chmod, sticky and set-group-id directories, umask,
// special files, O_APPEND, xattr flags. The battery (scripts/posix-edges.py) prints one line
// per case; every expected answer below is what ext4 gives for the same script run as root
// in a local directory on Linux, except the one marked.
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { quote, shOk, startTestCluster, type TestCluster } from './cluster.js';

const SCRIPT = resolve('test/e2e/scripts/posix-edges.py');

const EXPECTED = [
  'name255: ok',
  'name256: ENAMETOOLONG',
  'unlink255: ok',
  'pathmax: ENAMETOOLONG',
  'o_directory_on_file: ENOTDIR',
  'file_as_dir: ENOTDIR',
  'mkdir_exists: EEXIST',
  'unlink_dir: EISDIR',
  'rmdir_file: ENOTDIR',
  'rmdir_dot: EINVAL',
  'rmdir_nonempty: ENOTEMPTY',
  'rename_into_own_subdir: EINVAL',
  'rename_dir_over_file: ENOTDIR',
  'rename_file_over_dir: EISDIR',
  'rename_dir_over_nonempty_dir: ENOTEMPTY',
  'rename_dir_over_empty_dir: ok 3',
  'dir_nlink_counts_subdirs: ok 4',
  'rename_onto_itself: ok',
  'link_to_dir: EPERM',
  'link_count: ok 2',
  'rename_between_hard_links: ok (True, 2)',
  'rmdir_dotdot: ENOTEMPTY',
  'symlink_loop: ELOOP',
  'symlink_4095: ok',
  'readlink_4095: ok 4095',
  'symlink_4096: ENAMETOOLONG',
  'o_nofollow_on_symlink: ELOOP',
  'lchown_symlink: ok 65534',
  'user_xattr_on_symlink: EPERM',
  'o_trunc_of_empty_file_times: ok (True, True)',
  'truncate_times: ok (True, True, True)',
  'link_unlink_rename_ctime: ok (True, True, True)',
  'dir_times_on_create: ok (True, True)',
  'utime_now_by_writer: ok ok',
  'utime_explicit_by_writer: ok EPERM',
  'utime_nanoseconds: ok 2000000456',
  'chmod_by_non_owner: ok EPERM',
  'chown_give_away_by_owner: ok EPERM',
  'chown_clears_suid: ok (\'ok\', \'0o100755\')',
  'write_clears_suid: ok (\'ok\', \'0o100777\')',
  'chmod_sgid_by_nonmember: ok (\'ok\', \'0o100755\')',
  'sticky_dir_unlink_rename: ok (\'EPERM\', \'EPERM\')',
  'setgid_dir_inherits: ok (65534, \'0o42755\')',
  'search_needs_x: ok EACCES',
  'open_without_read_permission: ok EACCES',
  'umask_applies: ok 0o100750',
  'mkfifo: ok 0o10644',
  'fifo_nonblock_write_without_reader: ENXIO',
  'mknod_char_device: ok 259',
  'mknod_socket: ok 0o140644',
  "sparse_10g: ok (10737418241, b'\\x00\\x00\\x00\\x00')",
  // No holes are tracked: the whole file counts as data (SEEK_DATA at 0, SEEK_HOLE at the
  // end), which lseek(2) allows. ext4 answers (10737418240, 0).
  'seek_data_hole: ok (0, 10737418241)',
  'o_append: ok b\'abcd\'',
  'ftruncate_read_only_fd: EINVAL',
  'write_read_only_fd: EBADF',
  'rename_over_file: ok 4',
  "xattr_user: ok (b'v', ['user.k'])",
  'xattr_create_existing: EEXIST',
  'xattr_replace_missing: ENODATA',
  'xattr_get_missing: ENODATA',
  'statvfs_namemax: ok 255',
];

let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster({ chunkservers: 3, mount: true });
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

test('edge cases of POSIX semantics answer as on a local file system', async () => {
  const dir = `${c.mountDir}/posix-edges`;
  const out = await shOk(`mkdir ${quote(dir)} && /usr/bin/python3 ${quote(SCRIPT)} ${quote(dir)}`, { timeoutMs: 120_000 });
  expect(out.trim().split('\n')).toEqual(EXPECTED);
}, 150_000);
