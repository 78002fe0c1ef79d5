//! hatch-pbs onefile bootstrap: the program at the front of a single-file executable
//! `<script>-<version>-<triple>[.exe]` (README.md next to this file is the specification).
//!
//! File layout (the bootstrap reads it from its own executable; on macOS the payload, entry, padding and trailer
//! are the file range of the Mach-O segment `__HPBSONE` instead of the end of the file, see `findMachoSegment`):
//!
//!     [this program][payload: the artifact as a .tar.zst, members below one top directory]
//!     [entry: UTF-8 path of the launcher relative to the artifact's top directory]
//!     [trailer, 80 bytes, little-endian:
//!      magic "HPBSONE1" | format version u32 = 1 | payload format u32 = 1 (tar.zst) |
//!      payload offset u64 | payload size u64 | payload sha256 (32 bytes) |
//!      entry offset u64 | entry size u32 | reserved u32 = 0]
//!
//! Later start: `<cache root>/<sha256 hex>/<entry>` exists: run it (no hashing, no decompression).
//! First start: stream the payload through sha256 and zstd into a tar extractor writing
//! `<cache root>/.tmp-<hex>-<pid>-<random>/` (top directory stripped), compare the digest, then publish the
//! directory with one rename to `<cache root>/<hex>` (losing a race to a concurrent first start is fine: the
//! winner's directory is used). Own failures: one line "hatch-pbs onefile: <what>: <path>" on stderr, exit 127.
//!
//! Zig standard library only; built by build.py next to this file (-OReleaseSmall, stripped, single-threaded).

const std = @import("std");
const builtin = @import("builtin");
const root = @import("root");

const Io = std.Io;
const Dir = Io.Dir;
const File = Io.File;
const Sha256 = std.crypto.hash.sha2.Sha256;

const is_windows = builtin.os.tag == .windows;
const is_darwin = builtin.os.tag.isDarwin();
/// The GUI variant (Windows subsystem "windows") is built from bootstrap_gui.zig, which declares `hpbs_gui`.
const gui = is_windows and @hasDecl(root, "hpbs_gui");
const sep: u8 = if (is_windows) '\\' else '/';

/// Exit status of the bootstrap's own failures (a POSIX shell's "command not found").
const exit_failure: u8 = 127;

const magic = "HPBSONE1";
const trailer_size = 80;
const format_version: u32 = 1;
const payload_format_tar_zst: u32 = 1;
const entry_size_max = 4096;
/// Bytes of the zstd decompressor's buffer: four windows of zstd.default_window_len (8 MiB), virtual memory
/// touched as it fills.
const decompress_buffer_len = 4 * std.compress.zstd.default_window_len;

const Trailer = struct {
    payload_offset: u64,
    payload_size: u64,
    sha256: [32]u8,
    entry_offset: u64,
    entry_size: u32,
};

var stderr_buffer: [1024]u8 = undefined;
var global_io: Io = undefined;

// ---------------------------------------------------------------------------------------------------------------
// Messages

fn writeLine(comptime format: []const u8, args: anytype) void {
    var writer = File.stderr().writer(global_io, &stderr_buffer);
    writer.interface.print("hatch-pbs onefile: " ++ format ++ "\n", args) catch {};
    writer.interface.flush() catch {};
}

/// Report an own failure and exit 127: "hatch-pbs onefile: <what>: <path>" (the GUI variant also shows it in a
/// message box, since a GUI program started from Explorer has no standard error).
fn fail(comptime what: []const u8, args: anytype, path: []const u8) noreturn {
    writeLine(what ++ ": {s}", args ++ .{path});
    if (gui) win.messageBox(what ++ ": {s}", args ++ .{path});
    std.process.exit(exit_failure);
}

// ---------------------------------------------------------------------------------------------------------------
// Mach-O (macOS): the payload is the file range of the segment `__HPBSONE`

const macho_segment_name = "__HPBSONE";
const mh_magic_64: u32 = 0xfeedfacf;
const lc_segment_64: u32 = 0x19;
const mach_header_64_size = 32;
const segment_command_64_size = 72;
/// Bytes read from the start of the executable for its Mach-O header and load commands.
const macho_header_max = 64 * 1024;

/// A file range: offset from the start of the file and size, in bytes.
pub const FileRange = struct {
    offset: u64,
    size: u64,
};

pub const MachoError = error{ NotMachO, MalformedLoadCommands, NoSegment };

/// The file range of the segment `name` in the thin little-endian 64-bit Mach-O file whose first bytes (at least
/// the header and load commands) are `header`: walks the LC_SEGMENT_64 commands (`<mach-o/loader.h>`). Pure.
pub fn findMachoSegment(header: []const u8, name: []const u8) MachoError!FileRange {
    if (header.len < mach_header_64_size) return error.NotMachO;
    if (std.mem.readInt(u32, header[0..4], .little) != mh_magic_64) return error.NotMachO;
    const ncmds = std.mem.readInt(u32, header[16..20], .little);
    const sizeofcmds = std.mem.readInt(u32, header[20..24], .little);
    if (sizeofcmds > header.len - mach_header_64_size) return error.MalformedLoadCommands;
    const end: usize = mach_header_64_size + sizeofcmds;
    var offset: usize = mach_header_64_size;
    var index: u32 = 0;
    while (index < ncmds) : (index += 1) {
        if (end - offset < 8) return error.MalformedLoadCommands;
        const cmd = std.mem.readInt(u32, header[offset..][0..4], .little);
        const cmdsize = std.mem.readInt(u32, header[offset + 4 ..][0..4], .little);
        if (cmdsize < 8 or cmdsize > end - offset) return error.MalformedLoadCommands;
        if (cmd == lc_segment_64) {
            if (cmdsize < segment_command_64_size) return error.MalformedLoadCommands;
            const segname = header[offset + 8 ..][0..16];
            const length = std.mem.indexOfScalar(u8, segname, 0) orelse segname.len;
            if (std.mem.eql(u8, segname[0..length], name)) return .{
                .offset = std.mem.readInt(u64, header[offset + 40 ..][0..8], .little),
                .size = std.mem.readInt(u64, header[offset + 48 ..][0..8], .little),
            };
        }
        offset += cmdsize;
    }
    return error.NoSegment;
}

/// Where payload, entry and trailer lie in the executable: the `__HPBSONE` segment on macOS, else the whole file.
fn payloadRange(io: Io, file: File, length: u64, exe: []const u8) FileRange {
    if (!is_darwin) return .{ .offset = 0, .size = length };
    var header: [macho_header_max]u8 = undefined;
    const n = file.readPositionalAll(io, header[0..@intCast(@min(length, header.len))], 0) catch |err|
        fail("cannot read the executable ({t})", .{err}, exe);
    const range = findMachoSegment(header[0..n], macho_segment_name) catch |err|
        fail("no payload in the executable (no " ++ macho_segment_name ++ " Mach-O segment: {t})", .{err}, exe);
    if (range.offset > length or range.size > length - range.offset)
        fail("corrupt " ++ macho_segment_name ++ " Mach-O segment (past the end of the file)", .{}, exe);
    return range;
}

// ---------------------------------------------------------------------------------------------------------------
// Trailer

fn readTrailer(io: Io, file: File, exe: []const u8) Trailer {
    const file_length = file.length(io) catch |err| fail("cannot read the executable ({t})", .{err}, exe);
    const range = payloadRange(io, file, file_length, exe);
    const length = range.offset + range.size; // the trailer ends here
    if (range.size < trailer_size) fail("no payload in the executable (too short)", .{}, exe);
    var raw: [trailer_size]u8 = undefined;
    const n = file.readPositionalAll(io, &raw, length - trailer_size) catch |err|
        fail("cannot read the executable ({t})", .{err}, exe);
    if (n != trailer_size) fail("cannot read the executable (short read)", .{}, exe);
    if (!std.mem.eql(u8, raw[0..8], magic)) fail("no payload in the executable (no HPBSONE1 trailer)", .{}, exe);
    const version = std.mem.readInt(u32, raw[8..12], .little);
    const payload_format = std.mem.readInt(u32, raw[12..16], .little);
    if (version != format_version) fail("unsupported onefile format version {d}", .{version}, exe);
    if (payload_format != payload_format_tar_zst) fail("unsupported payload format {d}", .{payload_format}, exe);
    const trailer: Trailer = .{
        .payload_offset = std.mem.readInt(u64, raw[16..24], .little),
        .payload_size = std.mem.readInt(u64, raw[24..32], .little),
        .sha256 = raw[32..64].*,
        .entry_offset = std.mem.readInt(u64, raw[64..72], .little),
        .entry_size = std.mem.readInt(u32, raw[72..76], .little),
    };
    const end = length - trailer_size;
    const bad = trailer.payload_offset < range.offset or trailer.payload_offset > end or trailer.payload_size > end - trailer.payload_offset or
        trailer.entry_offset < trailer.payload_offset + trailer.payload_size or trailer.entry_offset > end or
        trailer.entry_size > end - trailer.entry_offset or trailer.entry_size == 0 or
        trailer.entry_size > entry_size_max or std.mem.readInt(u32, raw[76..80], .little) != 0;
    if (bad) fail("corrupt onefile trailer", .{}, exe);
    return trailer;
}

/// The entry path, checked (relative, no "." or ".." components) and with the native separator.
fn readEntry(io: Io, file: File, trailer: Trailer, buffer: []u8, exe: []const u8) []u8 {
    const entry = buffer[0..trailer.entry_size];
    const n = file.readPositionalAll(io, entry, trailer.entry_offset) catch |err|
        fail("cannot read the executable ({t})", .{err}, exe);
    if (n != entry.len) fail("cannot read the executable (short read)", .{}, exe);
    for (entry) |*c| {
        if (c.* == '/' or c.* == '\\') c.* = sep;
        if (c.* == 0) fail("corrupt onefile entry", .{}, exe);
    }
    if (entry[0] == sep or (entry.len > 1 and entry[1] == ':')) fail("corrupt onefile entry (absolute)", .{}, exe);
    var components = std.mem.splitScalar(u8, entry, sep);
    while (components.next()) |component| {
        if (component.len == 0 or std.mem.eql(u8, component, ".") or std.mem.eql(u8, component, ".."))
            fail("corrupt onefile entry", .{}, exe);
    }
    return entry;
}

// ---------------------------------------------------------------------------------------------------------------
// Cache root

fn envValue(environ: *const std.process.Environ.Map, name: []const u8) ?[]const u8 {
    const value = environ.get(name) orelse return null;
    return if (value.len == 0) null else value;
}

fn join(arena: std.mem.Allocator, parts: []const []const u8) []u8 {
    var list: std.ArrayList(u8) = .empty;
    for (parts, 0..) |part, i| {
        if (i > 0 and !(list.items.len > 0 and list.items[list.items.len - 1] == sep))
            list.append(arena, sep) catch oom();
        list.appendSlice(arena, part) catch oom();
    }
    return list.items;
}

fn oom() noreturn {
    writeLine("out of memory", .{});
    std.process.exit(exit_failure);
}

/// The cache root: HATCH_PBS_ONEFILE_CACHE, else the platform's user cache directory + "hatch-pbs-onefile";
/// null when none can be determined (no HOME / LOCALAPPDATA).
fn cacheRoot(arena: std.mem.Allocator, environ: *const std.process.Environ.Map) ?[]const u8 {
    if (envValue(environ, "HATCH_PBS_ONEFILE_CACHE")) |value| return value;
    if (is_windows) {
        const base = envValue(environ, "LOCALAPPDATA") orelse return null;
        return join(arena, &.{ base, "hatch-pbs-onefile" });
    }
    if (is_darwin) {
        const home = envValue(environ, "HOME") orelse return null;
        return join(arena, &.{ home, "Library/Caches/hatch-pbs-onefile" });
    }
    if (envValue(environ, "XDG_CACHE_HOME")) |xdg| {
        if (xdg[0] == '/') return join(arena, &.{ xdg, "hatch-pbs-onefile" });
    }
    const home = envValue(environ, "HOME") orelse return null;
    return join(arena, &.{ home, ".cache/hatch-pbs-onefile" });
}

/// The fallback root for an unwritable cache: `<system temp dir>/hatch-pbs-onefile-<uid or user name>`.
fn fallbackRoot(arena: std.mem.Allocator, environ: *const std.process.Environ.Map) []const u8 {
    if (is_windows) {
        const temp = envValue(environ, "TEMP") orelse envValue(environ, "TMP") orelse "C:\\Windows\\Temp";
        const user = envValue(environ, "USERNAME") orelse "user";
        const name = std.fmt.allocPrint(arena, "hatch-pbs-onefile-{s}", .{user}) catch oom();
        return join(arena, &.{ temp, name });
    }
    const temp = envValue(environ, "TMPDIR") orelse "/tmp";
    const name = std.fmt.allocPrint(arena, "hatch-pbs-onefile-{d}", .{std.posix.system.getuid()}) catch oom();
    return join(arena, &.{ temp, name });
}

/// mkdir -p, one component after the other from the first (std's createDirPath walks back on FileNotFound and
/// loops forever where mkdir says ENOENT below an existing directory, as in /proc).
/// `private`: the last component is created rwx------ (the fallback root in the shared temp directory).
fn makePath(io: Io, path: []const u8, private: bool) !void {
    var it = Dir.path.componentIterator(path);
    while (it.next()) |component| {
        const last = component.path.len == path.len;
        const permissions: Dir.Permissions = if (private and last and !is_windows) .fromMode(0o700) else .default_dir;
        Dir.cwd().createDir(io, component.path, permissions) catch |err| switch (err) {
            error.PathAlreadyExists => {
                const stat = try Dir.cwd().statFile(io, component.path, .{});
                if (stat.kind != .directory) return error.NotDir;
            },
            else => |e| return e,
        };
    }
}

/// Whether `path` is a directory (not a symbolic link) owned by this user that nobody else may write to. The
/// fallback root lives in the shared temp directory, where another user could have created it first and put a
/// `<hex>/<entry>` of their own in it. Windows: always true (`%TEMP%` is the user's own).
fn isPrivateDir(arena: std.mem.Allocator, path: []const u8) bool {
    if (is_windows) return true;
    const path_z = arena.dupeSentinel(u8, path, 0) catch oom();
    var mode: u32 = undefined;
    var uid: u32 = undefined;
    if (builtin.link_libc) {
        var st: std.c.Stat = undefined;
        if (std.c.fstatat(std.c.AT.FDCWD, path_z, &st, std.c.AT.SYMLINK_NOFOLLOW) != 0) return false;
        mode = @intCast(st.mode);
        uid = @intCast(st.uid);
    } else {
        const linux = std.os.linux;
        var st: linux.Statx = undefined;
        const rc = linux.statx(linux.AT.FDCWD, path_z, linux.AT.SYMLINK_NOFOLLOW, .{ .TYPE = true, .MODE = true, .UID = true }, &st);
        if (linux.errno(rc) != .SUCCESS) return false;
        mode = st.mode;
        uid = st.uid;
    }
    return (mode & std.posix.S.IFMT) == std.posix.S.IFDIR and uid == std.posix.system.getuid() and (mode & 0o022) == 0;
}

fn isFile(io: Io, path: []const u8) bool {
    const stat = Dir.cwd().statFile(io, path, .{}) catch return false;
    return stat.kind != .directory;
}

// ---------------------------------------------------------------------------------------------------------------
// Extraction

/// A reader of the payload's bytes from the executable that hashes every byte it delivers.
const PayloadReader = struct {
    io: Io,
    file: File,
    offset: u64,
    remaining: u64,
    hasher: Sha256,
    read_error: ?anyerror = null,
    interface: Io.Reader,

    fn init(io: Io, file: File, trailer: Trailer, buffer: []u8) PayloadReader {
        return .{
            .io = io,
            .file = file,
            .offset = trailer.payload_offset,
            .remaining = trailer.payload_size,
            .hasher = Sha256.init(.{}),
            .interface = .{ .vtable = &.{ .stream = stream }, .buffer = buffer, .seek = 0, .end = 0 },
        };
    }

    fn stream(r: *Io.Reader, w: *Io.Writer, limit: Io.Limit) Io.Reader.StreamError!usize {
        const self: *PayloadReader = @alignCast(@fieldParentPtr("interface", r));
        if (self.remaining == 0) return error.EndOfStream;
        const dest = limit.slice(try w.writableSliceGreedy(1));
        const n = self.readSome(dest) catch |err| {
            self.read_error = err;
            return error.ReadFailed;
        };
        w.advance(n);
        return n;
    }

    fn readSome(self: *PayloadReader, dest: []u8) !usize {
        const want: usize = @intCast(@min(dest.len, self.remaining));
        const n = try self.file.readPositional(self.io, &.{dest[0..want]}, self.offset);
        if (n == 0) return error.UnexpectedEndOfFile;
        self.hasher.update(dest[0..n]);
        self.offset += n;
        self.remaining -= n;
        return n;
    }

    /// Hash the payload bytes nobody read (the tar end padding, or all after an extraction error).
    fn drain(self: *PayloadReader) !void {
        var buffer: [64 * 1024]u8 = undefined;
        while (self.remaining > 0) _ = try self.readSome(&buffer);
    }
};

const ExtractResult = struct {
    digest: [32]u8,
    err: ?anyerror,
};

fn extract(io: Io, gpa: std.mem.Allocator, file: File, trailer: Trailer, into: Dir) ExtractResult {
    const input_buffer = gpa.alloc(u8, 256 * 1024) catch oom();
    // The decompressor keeps the last window_len bytes buffered and, when its buffer is full, moves them to the
    // front (std.compress.zstd.Decompress.rebase). With the minimum buffer (window + one 128 KiB block) it moved
    // 8 MiB for every 128 KiB of output (a 50 MB payload took 2.2-4 s); a buffer of 4 windows moves at most a
    // third of what it decompresses.
    const window_buffer = gpa.alloc(u8, decompress_buffer_len) catch oom();
    var payload = PayloadReader.init(io, file, trailer, input_buffer);
    var zstd = std.compress.zstd.Decompress.init(&payload.interface, window_buffer, .{});
    var failure: ?anyerror = null;
    std.tar.extract(io, into, &zstd.reader, .{ .strip_components = 1, .mode_mode = .executable_bit_only }) catch
        |err| {
        failure = err;
        if (err == error.ReadFailed) {
            if (zstd.err) |zstd_err| failure = zstd_err;
            if (payload.read_error) |read_err| failure = read_err;
        }
    };
    payload.drain() catch |err| {
        if (failure == null) failure = err;
    };
    return .{ .digest = payload.hasher.finalResult(), .err = failure };
}

/// Extract the payload into `<root>/.tmp-...` and publish it as `<root>/<hex>`; return false when the root or
/// the temporary directory cannot be created (the caller falls back to another root), with `why` set.
fn install(
    io: Io,
    gpa: std.mem.Allocator,
    arena: std.mem.Allocator,
    file: File,
    trailer: Trailer,
    cache_root: []const u8,
    hex: []const u8,
    entry: []const u8,
    exe: []const u8,
    private: bool,
    why: *anyerror,
) bool {
    makePath(io, cache_root, private) catch |err| {
        why.* = err;
        return false;
    };
    if (private and !isPrivateDir(arena, cache_root))
        fail("the fallback cache is not a private directory of this user (another user may have created it); " ++
            "remove it or set HATCH_PBS_ONEFILE_CACHE", .{}, cache_root);
    var random: [4]u8 = undefined;
    io.random(&random);
    const pid: u64 = if (is_windows) win.GetCurrentProcessId() else @intCast(std.posix.system.getpid());
    const temp_name = std.fmt.allocPrint(arena, ".tmp-{s}-{d}-{x}", .{ hex, pid, random }) catch oom();
    const temp = join(arena, &.{ cache_root, temp_name });
    const published = join(arena, &.{ cache_root, hex });
    Dir.cwd().createDir(io, temp, .default_dir) catch |err| {
        why.* = err;
        return false;
    };
    var temp_dir = Dir.cwd().openDir(io, temp, .{}) catch |err| fail("cannot open ({t})", .{err}, temp);
    const result = extract(io, gpa, file, trailer, temp_dir);
    temp_dir.close(io);
    if (!std.mem.eql(u8, &result.digest, &trailer.sha256)) {
        Dir.cwd().deleteTree(io, temp) catch {};
        fail("the payload is damaged (sha256 {x}, expected {x})", .{ result.digest, trailer.sha256 }, exe);
    }
    if (result.err) |err| {
        Dir.cwd().deleteTree(io, temp) catch {};
        fail("cannot extract the payload into {s} ({t})", .{ temp, err }, exe);
    }
    if (!isFile(io, join(arena, &.{ temp, entry }))) {
        Dir.cwd().deleteTree(io, temp) catch {};
        fail("the payload has no entry {s}", .{entry}, exe);
    }
    rename(io, arena, temp, published) catch |err| {
        // Another first start published it meanwhile (EEXIST/ENOTEMPTY, or access denied on Windows).
        Dir.cwd().deleteTree(io, temp) catch {};
        if (!isFile(io, join(arena, &.{ published, entry }))) fail("cannot publish ({t})", .{err}, published);
    };
    return true;
}

/// rename(2); MoveFileExW on Windows (std's NtSetInformationFile rename with POSIX semantics fails under Wine).
fn rename(io: Io, arena: std.mem.Allocator, from: []const u8, to: []const u8) !void {
    if (!is_windows) return Dir.rename(Dir.cwd(), from, Dir.cwd(), to, io);
    const from_w = std.unicode.wtf8ToWtf16LeAllocZ(arena, from) catch return error.BadPathName;
    const to_w = std.unicode.wtf8ToWtf16LeAllocZ(arena, to) catch return error.BadPathName;
    if (win.MoveFileExW(from_w, to_w, 0) == 0) return error.RenameFailed;
}

// ---------------------------------------------------------------------------------------------------------------
// Running the entry

fn runEntry(init: std.process.Init, target: []const u8) noreturn {
    if (is_windows) win.run(init.arena.allocator(), target);
    const arena = init.arena.allocator();
    var argv: std.ArrayList([]const u8) = .empty;
    argv.append(arena, target) catch oom();
    var args = init.minimal.args.iterate();
    _ = args.skip();
    while (args.next()) |arg| argv.append(arena, arg) catch oom();
    const err = std.process.replace(init.io, .{ .argv = argv.items, .exe = .{ .path = Dir.cwd() } });
    fail("cannot run ({t})", .{err}, target);
}

// ---------------------------------------------------------------------------------------------------------------
// main

pub fn main(init: std.process.Init) u8 {
    const io = init.io;
    global_io = io;
    const arena = init.arena.allocator();
    var exe_buffer: [Dir.max_path_bytes]u8 = undefined;
    const exe_len = std.process.executablePath(io, &exe_buffer) catch |err|
        fail("cannot find its own executable ({t})", .{err}, "?");
    const exe = exe_buffer[0..exe_len];
    const file = Dir.cwd().openFile(io, exe, .{}) catch |err| fail("cannot open ({t})", .{err}, exe);
    const trailer = readTrailer(io, file, exe);
    var entry_buffer: [entry_size_max]u8 = undefined;
    const entry = readEntry(io, file, trailer, &entry_buffer, exe);
    const hex = std.fmt.bytesToHex(trailer.sha256, .lower);

    const primary = cacheRoot(arena, init.environ_map);
    const fallback = fallbackRoot(arena, init.environ_map);
    // Later start: the published directory exists.
    for ([_]?[]const u8{ primary, fallback }, [_]bool{ false, true }) |candidate, private| {
        const cache = candidate orelse continue;
        const target = join(arena, &.{ cache, &hex, entry });
        if (isFile(io, target) and (!private or isPrivateDir(arena, cache))) {
            file.close(io);
            runEntry(init, target);
        }
    }
    // First start.
    var why: anyerror = error.NoCacheDirectory;
    if (primary) |cache| {
        if (install(io, init.gpa, arena, file, trailer, cache, &hex, entry, exe, false, &why)) {
            file.close(io);
            runEntry(init, join(arena, &.{ cache, &hex, entry }));
        }
        writeLine("warning: cannot write the cache {s} ({t}); using {s}", .{ cache, why, fallback });
    } else {
        writeLine("warning: no cache directory (HOME is not set); using {s}", .{fallback});
    }
    if (!install(io, init.gpa, arena, file, trailer, fallback, &hex, entry, exe, true, &why))
        fail("cannot write the cache ({t})", .{why}, fallback);
    file.close(io);
    runEntry(init, join(arena, &.{ fallback, &hex, entry }));
}

// ---------------------------------------------------------------------------------------------------------------
// Windows

const win = if (is_windows) struct {
    const windows = std.os.windows;
    const HANDLE = windows.HANDLE;

    extern "kernel32" fn GetCommandLineW() callconv(.winapi) [*:0]const u16;
    extern "kernel32" fn GetCurrentProcessId() callconv(.winapi) u32;
    extern "kernel32" fn SetConsoleCtrlHandler(routine: ?*const fn (u32) callconv(.winapi) c_int, add: c_int) callconv(.winapi) c_int;
    extern "kernel32" fn CreateJobObjectW(attributes: ?*anyopaque, name: ?[*:0]const u16) callconv(.winapi) ?HANDLE;
    extern "kernel32" fn SetInformationJobObject(job: HANDLE, class: c_int, info: *anyopaque, size: u32) callconv(.winapi) c_int;
    extern "kernel32" fn AssignProcessToJobObject(job: HANDLE, process: HANDLE) callconv(.winapi) c_int;
    extern "kernel32" fn ResumeThread(thread: HANDLE) callconv(.winapi) u32;
    extern "kernel32" fn WaitForSingleObject(handle: HANDLE, milliseconds: u32) callconv(.winapi) u32;
    extern "kernel32" fn GetExitCodeProcess(process: HANDLE, code: *u32) callconv(.winapi) c_int;
    extern "kernel32" fn CloseHandle(handle: HANDLE) callconv(.winapi) c_int;
    extern "kernel32" fn GetLastError() callconv(.winapi) u32;
    extern "kernel32" fn GetStartupInfoW(info: *windows.STARTUPINFOW) callconv(.winapi) void;
    extern "kernel32" fn GetStdHandle(which: u32) callconv(.winapi) ?HANDLE;
    extern "kernel32" fn SetHandleInformation(handle: HANDLE, mask: u32, flags: u32) callconv(.winapi) c_int;
    extern "kernel32" fn MoveFileExW(from: [*:0]const u16, to: [*:0]const u16, flags: u32) callconv(.winapi) c_int;
    extern "kernel32" fn ExitProcess(code: u32) callconv(.winapi) noreturn;
    extern "user32" fn MessageBoxW(owner: ?HANDLE, text: [*:0]const u16, caption: [*:0]const u16, kind: u32) callconv(.winapi) c_int;

    const BasicLimits = extern struct {
        per_process_user_time_limit: i64 = 0,
        per_job_user_time_limit: i64 = 0,
        limit_flags: u32 = 0,
        minimum_working_set_size: usize = 0,
        maximum_working_set_size: usize = 0,
        active_process_limit: u32 = 0,
        affinity: usize = 0,
        priority_class: u32 = 0,
        scheduling_class: u32 = 0,
    };
    const ExtendedLimits = extern struct {
        basic: BasicLimits = .{},
        io_counters: [6]u64 = @splat(0),
        process_memory_limit: usize = 0,
        job_memory_limit: usize = 0,
        peak_process_memory_used: usize = 0,
        peak_job_memory_used: usize = 0,
    };
    const job_object_extended_limit_information = 9;
    const kill_on_job_close = 0x2000;
    const silent_breakaway_ok = 0x1000;

    var child_process: ?HANDLE = null;

    /// Ctrl+C / Ctrl+Break reach the child in the same console, which decides; a handler routine rather than
    /// SetConsoleCtrlHandler(NULL, TRUE), whose "ignore" flag the child would inherit. On close, logoff and
    /// shutdown, wait for the child so that it can clean up before the job takes it.
    fn ignoreControlEvent(event: u32) callconv(.winapi) c_int {
        if (event > 1) {
            if (child_process) |process| _ = WaitForSingleObject(process, 0xFFFFFFFF);
        }
        return 1;
    }

    fn inheritable(handle: ?HANDLE) void {
        const h = handle orelse return;
        if (h == windows.INVALID_HANDLE_VALUE) return;
        _ = SetHandleInformation(h, 1, 1);
    }

    /// The command line after its program-name token and the blanks after it (CommandLineToArgvW rules).
    fn argumentsAfterProgramName(command_line: [*:0]const u16) [:0]const u16 {
        var p: usize = 0;
        if (command_line[0] == '"') {
            p = 1;
            while (command_line[p] != 0 and command_line[p] != '"') p += 1;
            if (command_line[p] == '"') p += 1;
        } else {
            while (command_line[p] != 0 and command_line[p] != ' ' and command_line[p] != '\t') p += 1;
        }
        while (command_line[p] == ' ' or command_line[p] == '\t') p += 1;
        return std.mem.span(command_line + p);
    }

    fn run(arena: std.mem.Allocator, target: []const u8) noreturn {
        const target_w = std.unicode.wtf8ToWtf16LeAllocZ(arena, target) catch fail("invalid path", .{}, target);
        const rest = argumentsAfterProgramName(GetCommandLineW());
        var command: std.ArrayList(u16) = .empty;
        command.append(arena, '"') catch oom();
        command.appendSlice(arena, target_w) catch oom();
        command.append(arena, '"') catch oom();
        if (rest.len > 0) {
            command.append(arena, ' ') catch oom();
            command.appendSlice(arena, rest) catch oom();
        }
        command.append(arena, 0) catch oom();

        _ = SetConsoleCtrlHandler(ignoreControlEvent, 1);
        const job = CreateJobObjectW(null, null);
        if (job) |j| {
            var limits: ExtendedLimits = .{};
            limits.basic.limit_flags = kill_on_job_close | silent_breakaway_ok;
            _ = SetInformationJobObject(j, job_object_extended_limit_information, &limits, @sizeOf(ExtendedLimits));
        }
        var startup = std.mem.zeroes(windows.STARTUPINFOW);
        startup.cb = @sizeOf(windows.STARTUPINFOW);
        GetStartupInfoW(&startup);
        startup.lpReserved = null;
        startup.dwFlags &= ~@as(u32, 0x200 | 0x400); // STARTF_USEHOTKEY, STARTF_HASSHELLDATA
        startup.dwFlags |= 0x100; // STARTF_USESTDHANDLES
        startup.hStdInput = GetStdHandle(@bitCast(@as(i32, -10)));
        startup.hStdOutput = GetStdHandle(@bitCast(@as(i32, -11)));
        startup.hStdError = GetStdHandle(@bitCast(@as(i32, -12)));
        inheritable(startup.hStdInput);
        inheritable(startup.hStdOutput);
        inheritable(startup.hStdError);
        var child: windows.PROCESS.INFORMATION = undefined;
        const line: [*:0]u16 = @ptrCast(command.items.ptr);
        if (!windows.kernel32.CreateProcessW(target_w, line, null, null, .TRUE, .{ .create_suspended = true }, null, null, &startup, &child).toBool())
            fail("cannot run (Windows error {d})", .{GetLastError()}, target);
        child_process = child.hProcess;
        if (job) |j| _ = AssignProcessToJobObject(j, child.hProcess);
        _ = ResumeThread(child.hThread);
        _ = CloseHandle(child.hThread);
        var status: u32 = exit_failure;
        _ = WaitForSingleObject(child.hProcess, 0xFFFFFFFF);
        if (GetExitCodeProcess(child.hProcess, &status) == 0) status = exit_failure;
        ExitProcess(status);
    }

    fn messageBox(comptime format: []const u8, args: anytype) void {
        var text: [2048]u8 = undefined;
        const message = std.fmt.bufPrint(&text, format, args) catch text[0..];
        var wide: [2048:0]u16 = undefined;
        const n = std.unicode.wtf8ToWtf16Le(&wide, message[0..@min(message.len, 2047)]) catch 0;
        wide[n] = 0;
        _ = MessageBoxW(null, &wide, std.unicode.wtf8ToWtf16LeStringLiteral("hatch-pbs onefile"), 0x10);
    }
} else struct {
    fn GetCurrentProcessId() u32 {
        return 0;
    }
    fn MoveFileExW(_: [*:0]const u16, _: [*:0]const u16, _: u32) c_int {
        return 0;
    }
    fn run(_: std.mem.Allocator, _: []const u8) void {}
    fn messageBox(comptime _: []const u8, _: anytype) void {}
};
