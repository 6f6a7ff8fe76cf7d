import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream';

/**
 * js-yamux answers every data frame it receives with a window-update frame, even when almost all of the receive
 * window is still free. On a mesh of ~1 KB gossip messages that is one extra encrypted TCP write (and one extra
 * read on the peer) per message: half of all frames an idle node sends. go-yamux and rust-yamux send the update
 * only once at least half of the window has been consumed; this does the same. SYN/ACK frames (which carry the
 * stream's opening flags) and a paused stream keep the library's behaviour.
 */
type WindowState = { state: StreamState; recvWindow: number; recvWindowCapacity: number };

const FLAGLESS = new Set<StreamState>([StreamState.SYNSent, StreamState.Established, StreamState.Finished]);

export const sendWindowUpdateEagerly = YamuxStream.prototype.sendWindowUpdate;

/** Whether a window update can wait: no flag to send, and the peer may still send half a window or more. */
export function windowUpdateCanWait(stream: WindowState): boolean {
  return FLAGLESS.has(stream.state) && stream.recvWindowCapacity * 2 >= stream.recvWindow;
}

YamuxStream.prototype.sendWindowUpdate = function sendWindowUpdate(this: YamuxStream) {
  if (windowUpdateCanWait(this as unknown as WindowState)) return;
  sendWindowUpdateEagerly.call(this);
};
