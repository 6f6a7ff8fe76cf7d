// The xsalsa20 package ships no types; this is the part of its API that pnet-cipher.ts patches.
declare module 'xsalsa20' {
  interface XSalsa20 {
    update(input: Uint8Array, output?: Uint8Array): Uint8Array;
    finalize(): void;
  }
  interface XSalsa20Constructor {
    (nonce: Uint8Array, key: Uint8Array): XSalsa20;
    new (nonce: Uint8Array, key: Uint8Array): XSalsa20;
    prototype: XSalsa20;
  }
  const XSalsa20: XSalsa20Constructor;
  export default XSalsa20;
}
