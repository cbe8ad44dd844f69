// Three layers of settings for every `gfs` command, applied once before its action runs:
//   1. flags on the command line (win),
//   2. the environment: GFS_<FLAG> (e.g. --http-port -> GFS_HTTP_PORT, --data -> GFS_DATA,
//      --master -> GFS_MASTER, --no-metrics -> GFS_METRICS=0),
//   3. a JSON config file (--config FILE, or GFS_CONFIG): an object of flag names (either
//      "http-port" or "httpPort") to values; a section named after the command ("master",
//      "chunkserver", "mount", ...) overrides the top level for that command,
// then the flags' built-in defaults. This is what the systemd units use (EnvironmentFile).
import { readFileSync } from 'node:fs';
import type { Command, Option } from 'commander';
import { GfsError } from '../common/errors.js';

export const CONFIG_ENV = 'GFS_CONFIG';

/** GFS_HTTP_PORT for --http-port; GFS_METRICS for --no-metrics. */
export function envNameOf(opt: Option): string | undefined {
  const long = opt.long?.replace(/^--/, '');
  if (!long) return undefined;
  return `GFS_${long.replace(/^no-/, '').replace(/-/g, '_').toUpperCase()}`;
}

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function parseBool(name: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  const s = String(v).trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  throw new GfsError('EINVAL', `${name}: expected true/false (or 1/0), got "${String(v)}"`);
}

export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GfsError('ENOENT', `cannot read config file ${file}: ${(err as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new GfsError('EINVAL', `config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new GfsError('EINVAL', `config file ${file} must hold a JSON object`);
  return v as Record<string, unknown>;
}

/** Looks `opt` up in a config object: "http-port", "httpPort", or for --no-x, "x" or "no-x". */
function fromConfig(cfg: Record<string, unknown>, opt: Option): { found: boolean; value?: unknown } {
  const long = opt.long?.replace(/^--/, '') ?? '';
  const base = long.replace(/^no-/, '');
  for (const k of [long, camel(long)]) if (k in cfg) return { found: true, value: opt.negate ? !parseBool(k, cfg[k]) : cfg[k] };
  if (opt.negate) for (const k of [base, camel(base)]) if (k in cfg) return { found: true, value: parseBool(k, cfg[k]) };
  return { found: false };
}

/**
 * Fills every option of `cmd` that was not given on the command line from the environment,
 * else from the config file. Throws EINVAL for a bad file or value, or unknown keys.
 */
export function applyConfigLayers(cmd: Command, env: NodeJS.ProcessEnv = process.env): void {
  const opts = cmd.options.filter((o) => o.long && o.long !== '--help' && o.long !== '--config');
  const own = cmd.opts() as Record<string, unknown>;
  const file = (typeof own.config === 'string' ? own.config : undefined) ?? env[CONFIG_ENV];
  let cfg: Record<string, unknown> = {};
  if (file) {
    const all = readConfigFile(file);
    const section = all[cmd.name()];
    const top = Object.fromEntries(Object.entries(all).filter(([, v]) => !v || typeof v !== 'object' || Array.isArray(v)));
    cfg = { ...top, ...(section && typeof section === 'object' && !Array.isArray(section) ? section : {}) };
  }
  for (const opt of opts) {
    const key = opt.attributeName();
    if (cmd.getOptionValueSource(key) === 'cli') continue;
    // --mount <dir> with --no-mount: the value option reads GFS_MOUNT / "mount" (false = --no-mount).
    if (opt.negate && opts.some((o) => o !== opt && !o.negate && o.attributeName() === key)) continue;
    const envName = envNameOf(opt);
    const raw = envName !== undefined ? env[envName] : undefined;
    if (raw !== undefined && raw !== '') {
      const value = opt.negate ? parseBool(envName!, raw) : opt.isBoolean() ? parseBool(envName!, raw) : raw;
      checkChoice(opt, value, envName!);
      cmd.setOptionValueWithSource(key, value, 'env');
      continue;
    }
    const c = fromConfig(cfg, opt);
    if (c.found) {
      const value = opt.negate || opt.isBoolean() ? parseBool(opt.long!, c.value) : c.value === false ? false : String(c.value);
      checkChoice(opt, value, `${file}: ${opt.long}`);
      cmd.setOptionValueWithSource(key, value, 'config');
    }
  }
}

function checkChoice(opt: Option, value: unknown, where: string): void {
  const choices = (opt as unknown as { argChoices?: string[] }).argChoices;
  if (choices && !choices.includes(String(value))) throw new GfsError('EINVAL', `${where}: must be one of ${choices.join(', ')}, got "${String(value)}"`);
}
