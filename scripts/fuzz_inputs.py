#!/usr/bin/env python3
"""Mutation fuzzing of duet's file inputs: checkpoints (float, int8, a training run's
last.safetensors for --resume), PNG, JPEG and IDX files.

Each case mutates a seed file (truncation, byte flips, extreme header words, cut or repeated
spans, edited safetensors headers and metadata, poisoned tensor values), runs one duet command
on it and flags any outcome other than:
  - exit 0, or
  - exit 1 or 2 with exactly one "duet: error: ..." line, the last line of stderr,
and any sanitizer report, abort or signal. Run it with the ASan build for memory errors:

  python3 scripts/fuzz_inputs.py --duet build/asan/duet --cases 400 --seed 1

Seeds and cases live under runs/fuzz/ (ignored); a problem case is kept there and printed.
Exit status: 0 when no case shows a problem, 1 otherwise. Standard library only (any Python 3).
"""
import argparse
import gzip
import json
import os
import random
import shutil
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, 'models')


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def make_seeds(duet, seeds, rng):
    """Seed files, made by the release tools themselves (once per folder)."""
    os.makedirs(seeds, exist_ok=True)
    unet, clf = f'{MODELS}/unet-xs-fmnist.safetensors', f'{MODELS}/resnet20-fmnist.safetensors'
    steps = []
    if not os.path.exists(f'{seeds}/one.png'):
        steps.append([duet, 'sample', '-m', unet, '--class', '1', '-n', '1', '--steps', '2', '-s', '1',
                      '-o', f'{seeds}/one.png'])
    if not os.path.exists(f'{seeds}/grid.jpg'):
        steps.append([duet, 'sample', '-m', unet, '--class', '1', '-n', '4', '--grid', '2', '--steps',
                      '2', '-s', '1', '-o', f'{seeds}/grid.jpg'])
    if not os.path.exists(f'{seeds}/int8.safetensors'):
        steps.append([duet, 'quantize', '-m', clf, '-o', f'{seeds}/int8.safetensors', '--calib',
                      'fashion-mnist:200', '--eval-limit', '100', '--bench', 'none'])
    if not os.path.exists(f'{seeds}/unet-int8.safetensors'):
        steps.append([duet, 'quantize', '-m', unet, '-o', f'{seeds}/unet-int8.safetensors', '--calib',
                      'fashion-mnist:64', '--bench', 'none'])
    if not os.path.exists(f'{seeds}/run/last.safetensors'):
        steps.append([duet, '-t', '2', 'train', '--task', 'classify', '--arch', 'resnet20', '--limit',
                      '256', '--test-limit', '100', '--epochs', '2', '--stop-after', '1', '-s', '1',
                      '-o', f'{seeds}/run'])
    for cmd in steps:
        p = run(cmd)
        if p.returncode != 0:
            sys.exit(f'fuzz_inputs: making a seed failed: {" ".join(cmd)}\n{p.stderr}')

    def idx(path, dims, payload):
        header = bytes([0, 0, 8, len(dims)]) + b''.join(struct.pack('>I', d) for d in dims)
        with open(path, 'wb') as f:
            f.write(header + payload)
    idx(f'{seeds}/img.idx', [20, 28, 28], bytes(rng.randrange(256) for _ in range(20 * 784)))
    idx(f'{seeds}/lbl.idx', [20], bytes(rng.randrange(10) for _ in range(20)))
    with gzip.open(f'{seeds}/img.idx.gz', 'wb') as f, open(f'{seeds}/img.idx', 'rb') as g:
        f.write(g.read())


def mutate_bytes(data, rng):
    b = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0:  # truncated
        return bytes(b[:rng.randrange(len(b) + 1)])
    if kind == 1:  # bytes near the start (headers)
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(min(len(b), 600))] = rng.randrange(256)
        return bytes(b)
    if kind == 2:  # bit flips anywhere
        for _ in range(rng.randrange(1, 20)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == 3:  # an extreme 32-bit word early on (sizes, counts, lengths)
        i = rng.randrange(max(1, min(len(b) - 4, 64)))
        b[i:i + 4] = struct.pack('>I', rng.choice([0, 1, 0x7fffffff, 0xffffffff, 0x10000, 196608]))
        return bytes(b)
    if kind == 4:  # a span cut out or repeated
        i, j = sorted(rng.randrange(len(b)) for _ in range(2))
        return bytes(b[:i] + b[j:]) if rng.random() < 0.5 else bytes(b[:j] + b[i:j] + b[j:])
    return bytes(b) + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))


def poke_json(value, rng):
    """One leaf of a JSON value replaced by something of the wrong kind or size."""
    if isinstance(value, dict) and value:
        key = rng.choice(list(value))
        if isinstance(value[key], (dict, list)) and rng.random() < 0.6:
            poke_json(value[key], rng)
        else:
            value[key] = rng.choice([-1, 0, 10**12, 'x', None, [], 3.5, 1e308])
    elif isinstance(value, list) and value:
        i = rng.randrange(len(value))
        if isinstance(value[i], (dict, list)) and rng.random() < 0.6:
            poke_json(value[i], rng)
        else:
            value[i] = rng.choice([-1, 0, 10**12, 'x', None, 3.5])


def poison_values(body, entry, rng):
    """Special values (NaN, infinity, negatives, extremes) written into one tensor's bytes."""
    b0, b1 = entry['data_offsets']
    dtype = entry['dtype']
    if dtype == 'F32':
        pool = [struct.pack('<f', v) for v in (float('nan'), float('inf'), -1.0, 0.0, 1e30, -1e30)]
    elif dtype == 'I64':
        pool = [struct.pack('<q', v) for v in (-1, 0, 2**62, -2**63)]
    elif dtype == 'I32':
        pool = [struct.pack('<i', v) for v in (-1, 0, 128, 255, 2**31 - 1, -2**31)]
    else:
        pool = [bytes([rng.randrange(256)])]
    size = len(pool[0])
    whole = rng.random() < 0.5
    body = bytearray(body)
    for off in range(b0, b1 - size + 1, size):
        if whole or rng.random() < 0.1:
            body[off:off + size] = rng.choice(pool)
    return bytes(body)


def mutate_safetensors(data, rng):
    (n,) = struct.unpack('<Q', data[:8])
    header, body = json.loads(data[8:8 + n]), data[8 + n:]
    key = rng.choice([k for k in header if k != '__metadata__'])
    entry = header[key]
    what = rng.randrange(8)
    if what == 0:
        entry['shape'] = [rng.choice([0, 1, 3, 2**31, 2**40, -1]) for _ in entry['shape']] or [7]
    elif what == 1:
        entry['dtype'] = rng.choice(['F16', 'BF16', 'I8', 'U8', 'I64', 'F64', 'BOOL', 'X'])
    elif what == 2:
        entry['data_offsets'] = [rng.choice([0, 1, len(body), 2**63, -5]),
                                 rng.choice([0, len(body) + 4, 2**62])]
    elif what == 3:
        del header[key]
    elif what == 4 and '__metadata__' in header:
        meta = header['__metadata__']
        mk = rng.choice(list(meta))
        try:
            value = json.loads(meta[mk])
            poke_json(value, rng)
            meta[mk] = json.dumps(value)
        except (ValueError, TypeError):
            meta[mk] = meta[mk][:rng.randrange(len(meta[mk]) + 1)]
    elif what == 5:
        header[key + 'x'] = entry
    elif what in (6, 7):  # the container stays valid; the values do not
        body = poison_values(body, entry, rng)
    else:
        return mutate_bytes(data, rng)
    raw = json.dumps(header).encode()
    return struct.pack('<Q', len(raw)) + raw + body


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--duet', default=os.path.join(ROOT, 'build/release/duet'),
                    help='the duet binary under test (the ASan build finds memory errors)')
    ap.add_argument('--tools', default=os.path.join(ROOT, 'build/release/duet'),
                    help='the duet binary that makes the seed files')
    ap.add_argument('--cases', type=int, default=200)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--only', default='', help='comma list of case names (default: all)')
    ap.add_argument('--show', action='store_true', help='print every outcome, not just problems')
    a = ap.parse_args()
    rng = random.Random(a.seed)
    seeds = os.path.join(ROOT, 'runs/fuzz/seeds')
    work = os.path.join(ROOT, f'runs/fuzz/w{a.seed}')
    os.makedirs(work, exist_ok=True)
    make_seeds(a.tools, seeds, rng)
    clf, unet = f'{MODELS}/resnet20-fmnist.safetensors', f'{MODELS}/unet-xs-fmnist.safetensors'
    png = f'{seeds}/one.png'
    D = a.duet
    out_png = f'{work}/out.png'

    def classify(f):
        return [D, 'classify', '-m', f, png, '--top', '1']

    def sample(f):
        return [D, 'sample', '-m', f, '--class', '1', '-n', '1', '--steps', '1', '-o', out_png]

    def eval_idx(images, labels):
        return [D, 'eval', '-m', clf, '--data', f'idx:{images},{labels}']

    # name, seed file, how to mutate it, the command on the mutated file
    cases = [
        ('classifier', clf, 'st', classify),
        ('classifier-info', clf, 'st', lambda f: [D, 'info', '-m', f]),
        ('generator', unet, 'st', sample),
        ('generator-info', unet, 'st', lambda f: [D, 'info', '-m', f]),
        ('int8-classifier', f'{seeds}/int8.safetensors', 'st', classify),
        ('int8-generator', f'{seeds}/unet-int8.safetensors', 'st', sample),
        ('resume', f'{seeds}/run/last.safetensors', 'st', None),
        ('png', png, 'raw', lambda f: [D, 'classify', '-m', clf, f, '--top', '1']),
        ('jpeg', f'{seeds}/grid.jpg', 'raw', lambda f: [D, 'classify', '-m', clf, f, '--top', '1']),
        ('idx-images', f'{seeds}/img.idx', 'raw', lambda f: eval_idx(f, f'{seeds}/lbl.idx')),
        ('idx-gz', f'{seeds}/img.idx.gz', 'raw', lambda f: eval_idx(f, f'{seeds}/lbl.idx')),
        ('idx-labels', f'{seeds}/lbl.idx', 'raw', lambda f: eval_idx(f'{seeds}/img.idx', f)),
    ]
    if a.only:
        wanted = set(a.only.split(','))
        unknown = wanted - {c[0] for c in cases}
        if unknown:
            sys.exit(f'fuzz_inputs: --only: unknown case names {sorted(unknown)}')
        cases = [c for c in cases if c[0] in wanted]
    env = dict(os.environ, ASAN_OPTIONS='detect_leaks=0', UBSAN_OPTIONS='print_stacktrace=1',
               DUET_THREADS='1')
    problems = 0
    for i in range(a.cases):
        name, src, how, command = cases[i % len(cases)]
        with open(src, 'rb') as f:
            data = f.read()
        mutated = mutate_safetensors(data, rng) if how == 'st' and rng.random() < 0.7 else \
            mutate_bytes(data, rng)
        ext = '.idx.gz' if src.endswith('.gz') else os.path.splitext(src)[1]
        path = f'{work}/case{i}{ext}'
        if command is None:  # a copy of the stopped run, its last.safetensors mutated
            run_dir = f'{work}/run'
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.copytree(f'{seeds}/run', run_dir)
            path = f'{run_dir}/last.safetensors'
            command = lambda f: [D, 'train', '--resume', '-o', run_dir]  # noqa: E731
        with open(path, 'wb') as f:
            f.write(mutated)
        try:
            p = run(command(path), timeout=600, env=env)
            rc, err = p.returncode, p.stderr
        except subprocess.TimeoutExpired:
            rc, err = 'timeout', ''
        lines = [line for line in err.strip().splitlines() if line]
        errors = [line for line in lines if line.startswith('duet: error')]
        bad = (rc not in (0, 1, 2) or 'Sanitizer' in err or 'runtime error' in err or
               'terminate called' in err or
               (rc in (1, 2) and (len(errors) != 1 or lines[-1] != errors[0])))
        if a.show:
            print(f'{name} rc={rc} {(lines[-1] if lines else "")[:200]}')
        if bad:
            problems += 1
            keep = f'{work}/problem{i}-{name}{ext}'
            shutil.copy(path, keep)
            print(f'PROBLEM case {i} ({name}) rc={rc}, kept as {keep}\n  ' +
                  '\n  '.join(lines[-12:]), flush=True)
        if os.path.exists(path) and name != 'resume':
            os.remove(path)
    print(f'fuzz_inputs: {a.cases} cases, {problems} problems (seed {a.seed}, {D})')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
