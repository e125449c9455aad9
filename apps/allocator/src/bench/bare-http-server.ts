import http from 'node:http';

// The ceiling of the allocator bench: the least a node:http server can do for the same exchange.
// Reads the whole body, parses it as JSON, answers the allocator's 200 JSON. No routing, key,
// validation or logging. Prints {"port":N} once listening. Usage: node dist/bench/bare-http-server.js
const ANSWER = JSON.stringify({ iotHubHostName: 'contoso-toasters-hub-1098.azure-devices.net' });

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    JSON.parse(Buffer.concat(chunks).toString('utf8'));
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    res.end(ANSWER);
  });
});
const port = Number(process.env.PORT ?? 0);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
