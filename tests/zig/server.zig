// The Zig test server: the routes of tests/c/server.c, in callback mode,
// with the header through @cImport and the static library linked in.
const std = @import("std");
const c = @cImport({
    @cInclude("volley.h");
    @cInclude("signal.h");
    @cInclude("pthread.h");
});

const Peer = struct { room: []u8, name: []u8 };
const alloc = std.heap.c_allocator;
var lock: std.Thread.Mutex = .{};
var last_closed: c.volley_ws = std.mem.zeroes(c.volley_ws);

fn bytes(b: c.volley_bytes) []const u8 {
    if (b.len == 0) return "";
    return b.data[0..b.len];
}

fn say(s: ?*c.volley_server, ws: c.volley_ws, text: []const u8) void {
    _ = c.volley_ws_send_text(s, ws, text.ptr, text.len, 0);
}

fn peerOf(ev: [*c]const c.volley_event) *Peer {
    return @ptrFromInt(@as(usize, @intCast(ev.*.user)));
}

fn onUpgrade(_: ?*anyopaque, s: ?*c.volley_server, ev: [*c]const c.volley_event) callconv(.c) void {
    const r = ev.*.request.*;
    if (std.mem.eql(u8, bytes(r.path), "/reject")) {
        const body = "go away";
        _ = c.volley_upgrade_reject(s, ev.*.ws, 403, null, 0, body, body.len);
        return;
    }
    var room: []const u8 = "";
    var i: usize = 0;
    while (i < r.params_len) : (i += 1) {
        if (std.mem.eql(u8, bytes(r.params[i].name), "name")) room = bytes(r.params[i].value);
    }
    const q = bytes(r.query);
    const name = if (std.mem.startsWith(u8, q, "user=")) q[5..] else "anon";
    const p = alloc.create(Peer) catch return;
    p.* = .{ .room = alloc.dupe(u8, room) catch return, .name = alloc.dupe(u8, name) catch return };
    _ = c.volley_upgrade_accept(s, ev.*.ws, @intFromPtr(p), null, null, 0);
}

fn announce(s: ?*c.volley_server, ws: c.volley_ws, p: *Peer, what: []const u8) void {
    var buf: [256]u8 = undefined;
    const line = std.fmt.bufPrint(&buf, "{s} {s}", .{ p.name, what }) catch return;
    _ = c.volley_ws_publish(s, ws, p.room.ptr, p.room.len, line.ptr, line.len, 0, null);
}

fn onOpen(_: ?*anyopaque, s: ?*c.volley_server, ev: [*c]const c.volley_event) callconv(.c) void {
    const p = peerOf(ev);
    if (p.room.len > 0) {
        _ = c.volley_ws_subscribe(s, ev.*.ws, p.room.ptr, p.room.len);
        announce(s, ev.*.ws, p, "joined");
    }
}

fn onMessage(_: ?*anyopaque, s: ?*c.volley_server, ev: [*c]const c.volley_event) callconv(.c) void {
    const p = peerOf(ev);
    const d = bytes(ev.*.data);
    if (p.room.len > 0) {
        var buf: [1024]u8 = undefined;
        const line = std.fmt.bufPrint(&buf, "{s}: {s}", .{ p.name, d }) catch return;
        _ = c.volley_ws_publish(s, ev.*.ws, p.room.ptr, p.room.len, line.ptr, line.len, 0, null);
    } else if (std.mem.startsWith(u8, d, "close:")) {
        var it = std.mem.splitScalar(u8, d[6..], ':');
        const code = std.fmt.parseInt(u16, it.first(), 10) catch 1000;
        const reason = it.rest();
        _ = c.volley_ws_close(s, ev.*.ws, code, reason.ptr, reason.len);
    } else if (std.mem.eql(u8, d, "stale?")) {
        lock.lock();
        const old = last_closed;
        lock.unlock();
        if (old.generation == 0) return say(s, ev.*.ws, "stale:none");
        const ok = c.volley_ws_send_text(s, old, "x", 1, 0) == 0 and
            c.volley_ws_close(s, old, 1000, null, 0) == c.VOLLEY_RESULT_CLOSED and
            c.volley_ws_ready_state(s, old) == 3 and
            c.volley_ws_subscribe(s, old, "t", 1) == c.VOLLEY_RESULT_CLOSED;
        say(s, ev.*.ws, if (ok) "stale:ok" else "stale:BAD");
    } else {
        const flags: u32 = if (ev.*.flags & c.VOLLEY_EVENT_BINARY != 0) c.VOLLEY_SEND_BINARY else 0;
        _ = c.volley_ws_send(s, ev.*.ws, ev.*.data.data, ev.*.data.len, flags);
    }
}

fn onClose(_: ?*anyopaque, s: ?*c.volley_server, ev: [*c]const c.volley_event) callconv(.c) void {
    const p = peerOf(ev);
    if (p.room.len > 0) announce(s, ev.*.ws, p, "left");
    lock.lock();
    last_closed = ev.*.ws;
    lock.unlock();
    alloc.free(p.room);
    alloc.free(p.name);
    alloc.destroy(p);
}

fn onRequest(_: ?*anyopaque, s: ?*c.volley_server, ev: [*c]const c.volley_event) callconv(.c) void {
    if (std.mem.eql(u8, bytes(ev.*.request.*.path), "/health")) {
        _ = c.volley_respond(s, ev.*.ws, 200, null, 0, "ok", 2);
    } else {
        _ = c.volley_respond(s, ev.*.ws, 404, null, 0, "no", 2);
    }
}

pub fn main() !void {
    if (c.volley_abi_version() != c.VOLLEY_ABI_VERSION) return error.AbiMismatch;
    var args = std.process.args();
    _ = args.next();
    const port: u16 = if (args.next()) |a| try std.fmt.parseInt(u16, a, 10) else 0;
    var routes = [_][*c]const u8{ "/echo", "/room/:name", "/reject", "/health" };
    var o: c.volley_options = undefined;
    _ = c.volley_options_init_sized(&o, @sizeOf(c.volley_options));
    o.port = port;
    o.routes = &routes;
    o.routes_len = routes.len;
    o.workers = 2;
    var h = std.mem.zeroes(c.volley_handlers);
    h.struct_size = @sizeOf(c.volley_handlers);
    h.on_upgrade = onUpgrade;
    h.on_open = onOpen;
    h.on_message = onMessage;
    h.on_close = onClose;
    h.on_request = onRequest;
    var set: c.sigset_t = undefined;
    _ = c.sigemptyset(&set);
    _ = c.sigaddset(&set, c.SIGTERM);
    _ = c.sigaddset(&set, c.SIGINT);
    _ = c.pthread_sigmask(c.SIG_BLOCK, &set, null);
    var s: ?*c.volley_server = null;
    if (c.volley_server_new(&o, &h, null, &s) != c.VOLLEY_RESULT_OK) return error.ServerNew;
    var buf: [64]u8 = undefined;
    const line = try std.fmt.bufPrint(&buf, "listening {d}\n", .{c.volley_server_port(s)});
    _ = try std.posix.write(1, line);
    var sig: c_int = 0;
    _ = c.sigwait(&set, &sig);
    if (sig == c.SIGTERM) _ = c.volley_server_stop(s, c.VOLLEY_STOP_GRACEFUL);
    c.volley_server_free(s);
}
