#!/usr/bin/env python3
"""Mixed metadata workload through a gfs mount, for the master crash loop (issue 4).

  crash-workload.py work ROOT SEED OPS MODEL   runs OPS operations under ROOT, writes MODEL (json)
  crash-workload.py verify MODEL               checks the mount against MODEL; prints OK or errors

The worker keeps a model of what it saw succeed. An operation that raised may or may not have
happened (the master can die after the log fsync and before the reply), so it is recorded as
'either' with both outcomes, and verify accepts exactly one of them: never a half-applied one.
"""
import json, os, random, stat, sys

def content(tag, size):
    unit = (tag + '\n').encode()
    return (unit * (size // len(unit) + 1))[:size]

def work(root, seed, nops, model_path):
    rnd = random.Random(seed)
    os.umask(0o022)
    os.makedirs(root, exist_ok=True)
    strict = {root: {'t': 'd'}}     # path -> node
    either = []                     # [{'op':..., 'a': {path: node|None}, 'b': {path: node|None}}]
    ids = 0
    def files(): return [p for p, n in strict.items() if n['t'] == 'f']
    def dirs(): return [p for p, n in strict.items() if n['t'] == 'd']
    def drop(*paths):
        for p in paths:
            for q in [q for q in strict if q == p or q.startswith(p + '/')]:
                del strict[q]
    for i in range(nops):
        r = rnd.random()
        d = rnd.choice(dirs())
        ids += 1
        name = '%s/n%d' % (d, ids)
        try:
            if r < 0.30:
                size = rnd.choice([0, 1, 100, 5000, 70000, 300000])
                data = content(name, size)
                before = {name: None}
                after = {name: {'t': 'f', 'size': size, 'tag': name, 'mode': 0o644}}
                with open(name, 'xb') as f:
                    f.write(data)
                strict.update(after)
            elif r < 0.42:
                before, after = {name: None}, {name: {'t': 'd'}}
                os.mkdir(name)
                strict.update(after)
            elif r < 0.55 and files():
                src = rnd.choice(files())
                node = strict[src]
                before = {src: node, name: None}
                after = {src: None, name: node}
                os.rename(src, name)
                del strict[src]; strict[name] = node
            elif r < 0.65 and files():
                src = rnd.choice(files())
                before, after = {src: strict[src]}, {src: None}
                os.unlink(src)
                del strict[src]
            elif r < 0.75 and files():
                p = rnd.choice(files())
                mode = rnd.choice([0o600, 0o640, 0o755, 0o444])
                node = strict[p]  # shared by every hard link of the file
                names = [q for q, n in strict.items() if n is node]
                old = dict(node); new = dict(node); new['mode'] = mode
                before, after = {q: old for q in names}, {q: new for q in names}
                os.chmod(p, mode)
                node['mode'] = mode
            elif r < 0.85:
                target = 'target-%d' % ids
                before, after = {name: None}, {name: {'t': 'l', 'target': target}}
                os.symlink(target, name)
                strict.update(after)
            elif files():
                src = rnd.choice(files())
                before, after = {name: None}, {name: strict[src]}
                os.link(src, name)
                strict[name] = strict[src]
            else:
                continue
        except OSError as e:
            for p in list(before) + list(after):
                strict.pop(p, None)
            either.append({'op': i, 'err': str(e), 'a': before, 'b': after})
    with open(model_path, 'w') as f:
        json.dump({'strict': strict, 'either': either}, f)
    print('done', nops, 'uncertain', len(either), *('(op %d: %s)' % (e['op'], e['err']) for e in either))

def check(path, node):
    """None if `path` matches node (None = absent), else a description of the difference."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None if node is None else 'missing'
    if node is None:
        return 'present'
    if node['t'] == 'd':
        return None if stat.S_ISDIR(st.st_mode) else 'not a dir'
    if node['t'] == 'l':
        if not stat.S_ISLNK(st.st_mode): return 'not a symlink'
        return None if os.readlink(path) == node['target'] else 'wrong target'
    if not stat.S_ISREG(st.st_mode): return 'not a file'
    if stat.S_IMODE(st.st_mode) != node['mode']: return 'mode %o != %o' % (stat.S_IMODE(st.st_mode), node['mode'])
    with open(path, 'rb') as f:
        data = f.read()
    return None if data == content(node['tag'], node['size']) else 'wrong bytes (%d vs %d)' % (len(data), node['size'])

def verify(model_path):
    m = json.load(open(model_path))
    errors = []
    uncertain = set()
    for e in m['either']:
        uncertain.update(e['a']); uncertain.update(e['b'])
    for p, node in m['strict'].items():
        if p in uncertain: continue
        why = check(p, node)
        if why: errors.append('%s: %s' % (p, why))
    for e in m['either']:
        # Only paths no later op touched can be judged.
        paths = [p for p in set(e['a']) | set(e['b']) if p not in m['strict']]
        if not paths: continue
        a_ok = all(check(p, e['a'].get(p)) is None for p in paths)
        b_ok = all(check(p, e['b'].get(p)) is None for p in paths)
        # Content of a file whose write failed may be partial: only existence/type are judged.
        if not (a_ok or b_ok):
            loose = all((check(p, e['b'].get(p)) or '').startswith('wrong bytes') or check(p, e['b'].get(p)) is None for p in paths)
            if not loose:
                errors.append('op %d half-applied: %s' % (e['op'], e['err']))
    print('OK' if not errors else '\n'.join(errors[:20]))

if __name__ == '__main__':
    if sys.argv[1] == 'work':
        work(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        verify(sys.argv[2])
