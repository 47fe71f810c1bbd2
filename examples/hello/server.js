import http from 'node:http'

const port = Number(process.env.PORT ?? 8080)
http.createServer((_req, res) => res.end('hello from an image ocikit built\n')).listen(port, () => console.log(`listening on ${port}`))
process.on('SIGTERM', () => process.exit(0))
