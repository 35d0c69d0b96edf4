// A Node.js HTTP server with a chosen keepAliveTimeout, for tests and the race lab.
// usage: node keepalive.js PORT KEEPALIVE_MS [HOST]   (PORT 0 picks one)
// With TLS_CERT and TLS_KEY (PEM files) in the environment it serves HTTPS.
// Prints "ready PORT" once listening. Node 20 closes an idle keep-alive
// socket at keepAliveTimeout + ~1000 ms.
// Paths that shape a failure: /status/NNN answers NNN, /close answers
// without keep-alive, /slow/MS answers after MS ms, /crash exits (code 1)
// as an uncaught error would, with whatever else is in flight.
// With REPORT_IDLE=1, X-Idle-Ms says how long the connection idled before
// this request, since the end of the previous response: the race lab aims
// its gaps with it (off elsewhere, so that the bench's server is plain).
const reportIdle = process.env.REPORT_IDLE === '1';
const fs = require('fs');
const [port, keepAliveMs, host] = [+process.argv[2] || 0, +process.argv[3], process.argv[4] || '127.0.0.1'];
const tls = process.env.TLS_CERT && { cert: fs.readFileSync(process.env.TLS_CERT),
				      key: fs.readFileSync(process.env.TLS_KEY) };
const serve = (handler) => tls ? require('https').createServer(tls, handler) :
				 require('http').createServer(handler);
const server = serve((req, res) => {
	if (reportIdle) {
		const sock = req.socket;
		if (sock.answeredAt !== undefined)
			res.setHeader('X-Idle-Ms', (performance.now() - sock.answeredAt).toFixed(1));
		res.on('finish', () => { sock.answeredAt = performance.now(); });
	}
	req.resume();	// drain any body
	req.on('end', () => {
		if (req.url.startsWith('/crash')) process.exit(1);
		const m = /^\/status\/(\d{3})/.exec(req.url);
		if (m) res.statusCode = +m[1];
		if (req.url === '/close') res.setHeader('Connection', 'close');
		const slow = /^\/slow\/(\d+)/.exec(req.url);
		const answer = () => res.end(`${req.method} ${req.url} ok\n`);
		if (slow) setTimeout(answer, +slow[1]);
		else answer();
	});
});
server.keepAliveTimeout = keepAliveMs;
server.listen(port, host, () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
