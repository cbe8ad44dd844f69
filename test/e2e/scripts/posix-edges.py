#!/usr/bin/env python3
# Edge cases of POSIX/Linux file system semantics, run as root in an empty directory (argv[1]).
# Prints one line per case, "name: ok <value>" or "name: <ERRNO>", so that the output can be
# compared line by line with what a local file system answers. Cases that need another user
# run in a forked child with its uid/gid switched (no user account needed). A few cases sleep
# just over a second so that a changed time is visible at second granularity too.
import errno
import os
import stat
import sys
import time

D = sys.argv[1]
out = []


def case(name, fn):
    try:
        v = fn()
        out.append(f"{name}: ok {'' if v is None else v}".rstrip())
    except OSError as e:
        out.append(f"{name}: {errno.errorcode.get(e.errno, e.errno)}")


def P(*parts):
    return os.path.join(D, *parts)


def as_user(uid, gid, fn):
    """Runs fn in a child as uid/gid: 'ok' or the errno name it failed with."""
    pid = os.fork()
    if pid == 0:
        code = 255
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            fn()
            code = 0
        except OSError as e:
            code = e.errno
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    c = os.waitstatus_to_exitcode(status)
    return 'ok' if c == 0 else errno.errorcode.get(c, c)


def touch(p):
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))


NOBODY = 65534
OTHER = 1000
os.chmod(D, 0o777)

# Names and paths
case('name255', lambda: touch(P('a' * 255)))
case('name256', lambda: touch(P('a' * 256)))
case('unlink255', lambda: os.unlink(P('a' * 255)))
case('pathmax', lambda: os.stat(D + '/' + '/'.join(['x'] * 2100)))

# Files against directories, and renames
with open(P('f'), 'w') as fh:
    fh.write('hello')
case('o_directory_on_file', lambda: os.open(P('f'), os.O_RDONLY | os.O_DIRECTORY))
case('file_as_dir', lambda: os.stat(P('f', 'x')))
case('mkdir_exists', lambda: os.mkdir(P('f')))
case('unlink_dir', lambda: (os.mkdir(P('d')), os.unlink(P('d'))))
case('rmdir_file', lambda: os.rmdir(P('f')))
case('rmdir_dot', lambda: os.rmdir(P('d', '.')))
case('rmdir_nonempty', lambda: (os.mkdir(P('d', 'e')), os.rmdir(P('d'))))
case('rename_into_own_subdir', lambda: os.rename(P('d'), P('d', 'e', 'x')))
case('rename_dir_over_file', lambda: os.rename(P('d'), P('f')))
case('rename_file_over_dir', lambda: os.rename(P('f'), P('d')))
case('rename_dir_over_nonempty_dir', lambda: (os.mkdir(P('d2')), os.rename(P('d2'), P('d'))))
case('rename_dir_over_empty_dir', lambda: (os.mkdir(P('d3')), os.rename(P('d'), P('d3')), os.stat(P('d3')).st_nlink)[-1])
case('dir_nlink_counts_subdirs', lambda: os.stat(D).st_nlink)
case('rename_onto_itself', lambda: os.rename(P('f'), P('f')))
case('link_to_dir', lambda: os.link(P('d3'), P('dl')))
case('link_count', lambda: (os.link(P('f'), P('f2')), os.stat(P('f')).st_nlink)[-1])
# rename(2) between two names of one inode does nothing: both names stay.
case('rename_between_hard_links', lambda: (os.rename(P('f'), P('f2')), os.path.exists(P('f')), os.stat(P('f2')).st_nlink)[1:])
case('rmdir_dotdot', lambda: os.rmdir(P('d3', '..')))

# Symbolic links
case('symlink_loop', lambda: (os.symlink('l2', P('l1')), os.symlink('l1', P('l2')), os.stat(P('l1'))))
case('symlink_4095', lambda: os.symlink('x' * 4095, P('ls')))
case('readlink_4095', lambda: len(os.readlink(P('ls'))))
case('symlink_4096', lambda: os.symlink('x' * 4096, P('ls2')))
case('o_nofollow_on_symlink', lambda: os.open(P('ls'), os.O_RDONLY | os.O_NOFOLLOW))
case('lchown_symlink', lambda: (os.lchown(P('ls'), NOBODY, NOBODY), os.lstat(P('ls')).st_uid)[-1])
case('user_xattr_on_symlink', lambda: os.setxattr(P('ls'), 'user.k', b'v', follow_symlinks=False))


# Times
def otrunc_times():
    p = P('t')
    touch(p)
    s1 = os.stat(p)
    time.sleep(1.1)
    os.close(os.open(p, os.O_WRONLY | os.O_TRUNC))
    s2 = os.stat(p)
    return s2.st_mtime_ns > s1.st_mtime_ns, s2.st_ctime_ns > s1.st_ctime_ns


def truncate_times():
    p = P('t2')
    with open(p, 'w') as fh:
        fh.write('abc')
    s1 = os.stat(p)
    time.sleep(1.1)
    os.truncate(p, 3)  # same size: still a change (POSIX: times are marked for update)
    s2 = os.stat(p)
    os.truncate(p, 1)
    s3 = os.stat(p)
    return s2.st_mtime_ns > s1.st_mtime_ns, s3.st_mtime_ns > s1.st_mtime_ns, s3.st_ctime_ns > s1.st_ctime_ns


def name_change_ctimes():
    p = P('t3')
    touch(p)
    s1 = os.stat(p)
    time.sleep(1.1)
    os.link(p, P('t3l'))
    s2 = os.stat(p)
    time.sleep(1.1)
    os.unlink(P('t3l'))
    s3 = os.stat(p)
    time.sleep(1.1)
    os.rename(p, P('t3r'))
    s4 = os.stat(P('t3r'))
    return s2.st_ctime_ns > s1.st_ctime_ns, s3.st_ctime_ns > s2.st_ctime_ns, s4.st_ctime_ns > s3.st_ctime_ns


def dir_times_on_create():
    d = P('td')
    os.mkdir(d)
    s1 = os.stat(d)
    time.sleep(1.1)
    touch(os.path.join(d, 'x'))
    s2 = os.stat(d)
    return s2.st_mtime_ns > s1.st_mtime_ns, s2.st_ctime_ns > s1.st_ctime_ns


case('o_trunc_of_empty_file_times', otrunc_times)
case('truncate_times', truncate_times)
case('link_unlink_rename_ctime', name_change_ctimes)
case('dir_times_on_create', dir_times_on_create)
case('utime_now_by_writer', lambda: (os.chmod(P('t2'), 0o666), as_user(NOBODY, NOBODY, lambda: os.utime(P('t2'))))[-1])
case('utime_explicit_by_writer', lambda: as_user(NOBODY, NOBODY, lambda: os.utime(P('t2'), (1, 1))))
case('utime_nanoseconds', lambda: (os.utime(P('t2'), ns=(1_000_000_123, 2_000_000_456)), os.stat(P('t2')).st_mtime_ns)[-1])


# Ownership and permissions
def chown_clears_suid():
    p = P('su')
    touch(p)
    os.chown(p, NOBODY, NOBODY)
    os.chmod(p, 0o6755)
    return as_user(NOBODY, NOBODY, lambda: os.chown(p, -1, NOBODY)), oct(os.stat(p).st_mode)


def write_clears_suid():
    p = P('su2')
    touch(p)
    os.chown(p, NOBODY, NOBODY)
    os.chmod(p, 0o6777)

    def w():
        fd = os.open(p, os.O_WRONLY)
        os.write(fd, b'x')
        os.close(fd)
    return as_user(OTHER, OTHER, w), oct(os.stat(p).st_mode)


def chmod_sgid_by_nonmember():
    p = P('sg')
    touch(p)
    os.chown(p, NOBODY, 0)
    return as_user(NOBODY, NOBODY, lambda: os.chmod(p, 0o2755)), oct(os.stat(p).st_mode)


def sticky_dir():
    d = P('sticky')
    os.mkdir(d)
    os.chmod(d, 0o1777)
    p = os.path.join(d, 'x')
    touch(p)
    os.chmod(p, 0o666)
    return as_user(NOBODY, NOBODY, lambda: os.unlink(p)), as_user(NOBODY, NOBODY, lambda: os.rename(p, os.path.join(d, 'y')))


def setgid_dir_inherits():
    d = P('sgd')
    os.mkdir(d)
    os.chown(d, 0, NOBODY)
    os.chmod(d, 0o2777)
    as_user(OTHER, OTHER, lambda: (touch(os.path.join(d, 'x')), os.mkdir(os.path.join(d, 'y'))))
    return os.stat(os.path.join(d, 'x')).st_gid, oct(os.stat(os.path.join(d, 'y')).st_mode)


def umask_applies():
    old = os.umask(0o027)
    try:
        os.close(os.open(P('um'), os.O_CREAT | os.O_WRONLY, 0o777))
    finally:
        os.umask(old)
    return oct(os.stat(P('um')).st_mode)


case('chmod_by_non_owner', lambda: as_user(NOBODY, NOBODY, lambda: os.chmod(P('t2'), 0o777)))
case('chown_give_away_by_owner', lambda: (os.chown(P('t2'), NOBODY, NOBODY), as_user(NOBODY, NOBODY, lambda: os.chown(P('t2'), OTHER, NOBODY)))[-1])
case('chown_clears_suid', chown_clears_suid)
case('write_clears_suid', write_clears_suid)
case('chmod_sgid_by_nonmember', chmod_sgid_by_nonmember)
case('sticky_dir_unlink_rename', sticky_dir)
case('setgid_dir_inherits', setgid_dir_inherits)
case('search_needs_x', lambda: (os.mkdir(P('nx')), touch(P('nx', 'f')), os.chmod(P('nx'), 0o666), as_user(NOBODY, NOBODY, lambda: os.stat(P('nx', 'f'))))[-1])
case('open_without_read_permission', lambda: (os.chmod(P('t2'), 0o200), as_user(OTHER, OTHER, lambda: os.open(P('t2'), os.O_RDONLY)))[-1])
case('umask_applies', umask_applies)

# Special files
case('mkfifo', lambda: (os.mkfifo(P('fifo'), 0o644), oct(os.stat(P('fifo')).st_mode))[-1])
case('fifo_nonblock_write_without_reader', lambda: os.open(P('fifo'), os.O_WRONLY | os.O_NONBLOCK))
case('mknod_char_device', lambda: (os.mknod(P('chr'), 0o644 | stat.S_IFCHR, os.makedev(1, 3)), os.stat(P('chr')).st_rdev)[-1])
case('mknod_socket', lambda: (os.mknod(P('sock'), 0o644 | stat.S_IFSOCK), oct(os.stat(P('sock')).st_mode))[-1])


# Data
def sparse_10g():
    fd = os.open(P('sp'), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.pwrite(fd, b'z', 10 * 2**30)
        return os.fstat(fd).st_size, os.pread(fd, 4, 5 * 2**30)
    finally:
        os.close(fd)


def seek_data_hole():
    fd = os.open(P('sp'), os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE)
    finally:
        os.close(fd)


def o_append():
    fd = os.open(P('ap'), os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
    os.write(fd, b'abc')
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b'd')  # O_APPEND: at the end whatever the offset
    os.close(fd)
    with open(P('ap'), 'rb') as fh:
        return fh.read()


case('sparse_10g', sparse_10g)
case('seek_data_hole', seek_data_hole)
case('o_append', o_append)
case('ftruncate_read_only_fd', lambda: os.ftruncate(os.open(P('ap'), os.O_RDONLY), 0))
case('write_read_only_fd', lambda: os.write(os.open(P('ap'), os.O_RDONLY), b'x'))
case('rename_over_file', lambda: (os.rename(P('ap'), P('um')), os.stat(P('um')).st_size)[-1])

# Extended attributes
case('xattr_user', lambda: (os.setxattr(P('um'), 'user.k', b'v'), os.getxattr(P('um'), 'user.k'), os.listxattr(P('um')))[1:])
case('xattr_create_existing', lambda: os.setxattr(P('um'), 'user.k', b'v', os.XATTR_CREATE))
case('xattr_replace_missing', lambda: os.setxattr(P('um'), 'user.z', b'v', os.XATTR_REPLACE))
case('xattr_get_missing', lambda: os.getxattr(P('um'), 'user.nope'))

case('statvfs_namemax', lambda: os.statvfs(D).f_namemax)
print('\n'.join(out))
