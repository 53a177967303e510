// server.mjs: the socket.io peer of bench/realtime_fanout_bench.sh. One Node process, one
// socket.io Server (WebSocket transport only) on 127.0.0.1:SIO_PORT with the Redis adapter
// (@socket.io/redis-adapter over node-redis): a client emits join(<conversation id>, ack) and
// its socket joins that room; whatever a publisher emits to a room through Redis reaches the
// room's local sockets. Prints {"listening":PORT} when ready; exits on SIGTERM.
//   SIO_PORT=... REDIS_URL=redis://127.0.0.1:6379 node server.mjs
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createClient } from "redis";
import { createAdapter } from "@socket.io/redis-adapter";

const port = Number(process.env.SIO_PORT);
if (!Number.isInteger(port) || port <= 0 || !process.env.REDIS_URL) {
	console.error("server.mjs: SIO_PORT and REDIS_URL are required");
	process.exit(2);
}
const pubClient = createClient({ url: process.env.REDIS_URL });
const subClient = pubClient.duplicate();
for (const c of [pubClient, subClient]) c.on("error", (e) => console.error("redis:", e.message));
await Promise.all([pubClient.connect(), subClient.connect()]);

const http = createServer();
const io = new Server(http, {
	transports: ["websocket"],
	serveClient: false,
	adapter: createAdapter(pubClient, subClient),
});
let joined = 0;
io.on("connection", (socket) => {
	socket.on("join", (room, ack) => {
		if (typeof room === "string" && room.length > 0 && room.length <= 64) {
			socket.join(room);
			joined++;
		}
		if (typeof ack === "function") ack(true);
	});
});
http.listen(port, "127.0.0.1", () => console.log(JSON.stringify({ listening: port })));

const stop = () => {
	console.log(JSON.stringify({ stopping: true, sockets: io.engine.clientsCount, joined }));
	io.close();
	Promise.allSettled([pubClient.quit(), subClient.quit()]).finally(() => process.exit(0));
	setTimeout(() => process.exit(0), 3000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
