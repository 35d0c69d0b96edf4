// A Node.js HTTP server with a chosen keepAliveTimeout, for tests and the race lab.
// usage: node keepalive.js PORT KEEPALIVE_MS [HOST]   (PORT 0 picks one)
// Prints "ready PORT" once listening. Node 20 closes an idle keep-alive
// socket at keepAliveTimeout + ~1000 ms.
const http = require('http');
const [port, keepAliveMs, host] = [+process.argv[2] || 0, +process.argv[3], process.argv[4] || '127.0.0.1'];
const server = http.createServer((req, res) => {
	req.resume();	// drain any body
	req.on('end', () => {
		const m = /^\/status\/(\d{3})/.exec(req.url);	// /status/404 answers 404
		if (m) res.statusCode = +m[1];
		if (req.url === '/close') res.setHeader('Connection', 'close');	// no keep-alive
		res.end(`${req.method} ${req.url} ok\n`);
	});
});
server.keepAliveTimeout = keepAliveMs;
server.listen(port, host, () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
