// Moving data to and from the device. Uploads go through queue.writeBuffer (about 21 GB/s on
// llvmpipe, against 1.2 GB/s for mappedAtCreation); readback copies into a MAP_READ staging buffer.

export const STORAGE_USAGE = (): number => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** WebGPU buffer sizes and copies are in multiples of 4 bytes. */
export function align4(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

export function createBuffer(device: GPUDevice, bytes: number, label?: string, usage: number = STORAGE_USAGE()): GPUBuffer {
  return device.createBuffer({ size: Math.max(4, align4(bytes)), usage, label });
}

export function upload(device: GPUDevice, buffer: GPUBuffer, data: ArrayBufferView, offsetBytes = 0): void {
  let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 !== 0) {
    // An odd count of f16 values: pad the tail, which no kernel reads.
    const padded = new Uint8Array(align4(bytes.byteLength));
    padded.set(bytes);
    bytes = padded;
  }
  device.queue.writeBuffer(buffer, offsetBytes, bytes);
}

export async function readback(device: GPUDevice, buffer: GPUBuffer, bytes: number = buffer.size, offsetBytes = 0): Promise<ArrayBuffer> {
  const size = align4(bytes);
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: "readback" });
  const enc = device.createCommandEncoder({ label: "readback" });
  enc.copyBufferToBuffer(buffer, offsetBytes, staging, 0, size);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  staging.destroy();
  return out;
}
