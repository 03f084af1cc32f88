/**
 * PGlite's data directory with real fsyncs. PGlite as shipped never makes a write durable: it
 * starts postgres with `-F` (fsync off), its Emscripten `fdatasync` is a no-op, and its Node
 * file system (NODEFS) has no `fsync` operation. Writes reach the OS page cache, so a crash of
 * the broker loses nothing, but a power loss or kernel crash can lose committed rows — audit
 * events the agent already deleted from its spool once the broker acknowledged them — or leave
 * the data files inconsistent.
 *
 * The embedded store therefore runs postgres with `fsync=on` and `wal_sync_method=fsync` (the
 * one method that reaches the file system's `fsync`), and this file system gives NODEFS an
 * `fsync` that calls fsync(2) on the real file before postgres starts: a commit then returns
 * once its WAL is on stable storage, and a checkpoint syncs the data files it wrote, as on any
 * PostgreSQL. A failing fsync reaches postgres as EIO, which stops the store (fail closed); a
 * directory whose file system refuses fsync (EINVAL, EBADF) is tolerated, as postgres does.
 */
import { closeSync, fsyncSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite, type PGliteOptions } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';

/** Postgres flags for the embedded store's durability (with DurableNodeFS). */
const DURABLE_START_PARAMS = ['-c', 'fsync=on', '-c', 'wal_sync_method=fsync'] as const;

/**
 * PGlite options for a durable store in `dataDir`: DurableNodeFS, PGlite's start flags without
 * `-F` (fsync off), DURABLE_START_PARAMS, then `startParams`.
 */
export function durablePgliteOptions(
  dataDir: string,
  startParams: readonly string[] = [],
  onSync?: () => void,
): PGliteOptions {
  return {
    fs: new DurableNodeFS(dataDir, onSync),
    startParams: [
      ...PGlite.defaultStartParams.filter((p) => p !== '-F'),
      ...DURABLE_START_PARAMS,
      ...startParams,
    ],
  };
}

const WASI_EBADF = 8;
const WASI_EINVAL = 28;
const WASI_EIO = 29;

/**
 * The errno postgres gets for a failed fsync (WASI numbering, what Emscripten's fd_sync returns).
 * EBADF and EINVAL keep their meaning: postgres ignores them for a directory, as some file
 * systems refuse to fsync one; anything else is EIO.
 */
export function fsyncErrno(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'EBADF') return WASI_EBADF;
  if (code === 'EINVAL') return WASI_EINVAL;
  return WASI_EIO;
}

type ModuleOptions = Parameters<NodeFS['init']>[1];
type PreRun = NonNullable<ModuleOptions['preRun']>[number];
type EmscriptenModule = Parameters<PreRun>[0];

/** What NODEFS keeps per open file or directory (Emscripten internals, as far as used here). */
interface NodeFsStream {
  /** The real file descriptor; NODEFS opens none for a directory. */
  readonly nfd?: number;
  readonly node: object;
}

interface NodeFsType {
  readonly stream_ops: { fsync?: (stream: NodeFsStream) => number };
  /** The host path of a NODEFS node. */
  readonly realPath: (node: object) => string;
}

export class DurableNodeFS extends NodeFS {
  /**
   * @param onSync called after each real fsync (tests count them); an fsync that fails is
   *   reported to postgres, not here.
   */
  constructor(
    dataDir: string,
    private readonly onSync: () => void = () => {},
  ) {
    super(dataDir);
  }

  override async init(
    pg: Parameters<NodeFS['init']>[0],
    opts: ModuleOptions,
  ): Promise<{ emscriptenOpts: ModuleOptions }> {
    const base = await super.init(pg, opts);
    const giveFsync: PreRun = (mod: EmscriptenModule) => {
      const nodefs = mod.FS.filesystems.NODEFS as unknown as NodeFsType;
      nodefs.stream_ops.fsync = (stream) => {
        try {
          // A directory (postgres syncs one after creating or renaming a file in it) has no
          // descriptor in NODEFS: open its host path for the fsync.
          if (stream.nfd === undefined) syncPath(nodefs.realPath(stream.node));
          else fsyncSync(stream.nfd);
        } catch (err) {
          return fsyncErrno(err);
        }
        this.onSync();
        return 0;
      };
    };
    return {
      emscriptenOpts: {
        ...base.emscriptenOpts,
        preRun: [...(base.emscriptenOpts.preRun ?? []), giveFsync],
      },
    };
  }
}

/**
 * fsyncs every file and directory under `dir`: a data directory fresh from initdb (which PGlite
 * runs with fsync off) is on stable storage before the broker uses it.
 */
export function syncTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) syncTree(path);
    else if (entry.isFile()) syncPath(path);
  }
  syncDirectory(dir);
}

/** fsyncs a directory (its entries); a file system that refuses to is tolerated, as postgres does. */
export function syncDirectory(dir: string): void {
  try {
    syncPath(dir);
  } catch (err) {
    if (fsyncErrno(err) === WASI_EIO) throw err;
  }
}

function syncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
