/**
 * A TCP proxy on loopback between clients and a server, to make the network
 * bad on purpose: added latency (each chunk is held `latencyMs` before it is
 * passed on, order kept), stalls (nothing passes, in either direction, until
 * `resume()`; connections stay open), and cuts (every connection through it
 * is destroyed, as a dropped Wi-Fi does), and refusals (`refuse()`: every
 * connection cut and new ones closed at once, as an unreachable host, until
 * `admit()`). `chaos()` cuts and stalls at random from a seeded generator
 * until stopped.
 */
import net from 'node:net'
import { prng } from './conflicts.js'

export interface ProxyOptions {
  /** Where connections go: the server's port on 127.0.0.1. */
  targetPort: number
  latencyMs?: number
}

export interface ChaosOptions {
  seed: number
  /** Mean time between two disruptions. */
  everyMs: number
  /** How long a stall lasts, at most. */
  maxStallMs: number
}

export class TcpProxy {
  readonly cuts: number[] = []
  readonly stalls: number[] = []
  private readonly server: net.Server
  private readonly pairs = new Set<[net.Socket, net.Socket]>()
  private stalled = false
  private refusing = false
  private readonly waiting: (() => void)[] = []
  private chaosTimer: ReturnType<typeof setTimeout> | undefined
  port = 0

  private constructor(private readonly options: ProxyOptions) {
    this.server = net.createServer((client) => this.accept(client))
  }

  static async start(options: ProxyOptions): Promise<TcpProxy> {
    const proxy = new TcpProxy(options)
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve))
    proxy.port = (proxy.server.address() as net.AddressInfo).port
    return proxy
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get connections(): number {
    return this.pairs.size
  }

  /** Nothing passes until `resume()`; bytes in between are kept and then delivered in order. */
  stall(): void {
    this.stalled = true
    this.stalls.push(Date.now())
  }

  resume(): void {
    this.stalled = false
    for (const go of this.waiting.splice(0)) go()
  }

  /** Destroys every connection through the proxy (clients see their transport close). */
  cut(): void {
    this.cuts.push(Date.now())
    for (const [a, b] of this.pairs) {
      a.destroy()
      b.destroy()
    }
    this.pairs.clear()
  }

  /** Cuts every connection and closes new ones at once, until `admit()`. */
  refuse(): void {
    this.refusing = true
    this.cut()
  }

  admit(): void {
    this.refusing = false
  }

  /** Cuts and stalls, in turn, at random times (seeded) until `calm()`. */
  chaos({ seed, everyMs, maxStallMs }: ChaosOptions): void {
    const random = prng(seed)
    let turn = 0
    const next = (): void => {
      this.chaosTimer = setTimeout(
        () => {
          if (turn++ % 2 === 0) this.cut()
          else {
            this.stall()
            this.chaosTimer = setTimeout(() => {
              this.resume()
              next()
            }, random() * maxStallMs)
            return
          }
          next()
        },
        everyMs / 2 + random() * everyMs,
      )
    }
    next()
  }

  /** Stops the chaos and lets everything pass. */
  calm(): void {
    clearTimeout(this.chaosTimer)
    this.resume()
  }

  async close(): Promise<void> {
    this.calm()
    this.cut()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private accept(client: net.Socket): void {
    if (this.refusing) {
      client.destroy()
      return
    }
    const upstream = net.connect(this.options.targetPort, '127.0.0.1')
    const pair: [net.Socket, net.Socket] = [client, upstream]
    this.pairs.add(pair)
    const end = (): void => {
      this.pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    for (const s of pair) {
      s.on('error', end)
      s.on('close', end)
    }
    this.pipe(client, upstream)
    this.pipe(upstream, client)
  }

  /** Passes chunks from `from` to `to` one at a time, after the latency and any stall. */
  private pipe(from: net.Socket, to: net.Socket): void {
    let chain = Promise.resolve()
    const latency = this.options.latencyMs ?? 0
    from.on('data', (chunk: Buffer) => {
      const arrived = Date.now()
      chain = chain.then(async () => {
        const wait = arrived + latency - Date.now()
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
        while (this.stalled) await new Promise<void>((r) => this.waiting.push(r))
        if (!to.destroyed) to.write(chunk)
      })
    })
  }
}
