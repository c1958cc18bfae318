//! The ELF kernel inside an x86 bzImage. Linux's boot protocol
//! (Documentation/arch/x86/boot.rst) puts the real-mode setup code first,
//! `setup_sects` sectors after the boot sector, then the protected-mode
//! code; from protocol 2.08 the header names the compressed ELF inside the
//! latter (`payload_offset`, `payload_length`). Linux's build appends the
//! uncompressed size (le32) to the compressed stream.

use std::io::Read;

const SECTOR: usize = 512;
const SETUP_SECTS: usize = 0x1f1;
/// Old kernels left `setup_sects` zero, meaning four.
const DEFAULT_SETUP_SECTS: usize = 4;
const BOOT_FLAG: usize = 0x1fe;
const HEADER_MAGIC: usize = 0x202;
const PROTOCOL_VERSION: usize = 0x206;
const PAYLOAD_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH: usize = 0x24c;
/// The first protocol version with the payload fields.
const PAYLOAD_PROTOCOL: u16 = 0x0208;
/// Linux compresses its x86 image with `zstd -22 --ultra`: a 128 MiB window.
const MAX_ZSTD_WINDOW: u64 = 256 << 20;
/// No x86-64 vmlinux comes near this; a bigger claim is a corrupt file.
const MAX_VMLINUX: usize = 1 << 30;
/// The LZ4 legacy format (`lz4 -l`, Debian's 6.1 kernels): this magic,
/// then blocks of at most 8 MiB, each a le32 compressed size and the data.
const LZ4_LEGACY_MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// The compressions the boot protocol lists for the payload, by magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Bzip2,
    Lzma,
    Xz,
    Lz4,
    Lzo,
    Zstd,
}

impl Compression {
    pub fn of(payload: &[u8]) -> Option<Compression> {
        const MAGICS: &[(&[u8], Compression)] = &[
            (&[0x1f, 0x8b], Compression::Gzip),
            (b"BZh", Compression::Bzip2),
            (&[0x5d, 0x00], Compression::Lzma),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Compression::Xz),
            (&LZ4_LEGACY_MAGIC, Compression::Lz4),
            (&[0x89, b'L', b'Z', b'O'], Compression::Lzo),
            (&[0x28, 0xb5, 0x2f, 0xfd], Compression::Zstd),
        ];
        MAGICS.iter().find(|(magic, _)| payload.starts_with(magic)).map(|&(_, compression)| compression)
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Lzma => "lzma",
            Compression::Xz => "xz",
            Compression::Lz4 => "lz4",
            Compression::Lzo => "lzo",
            Compression::Zstd => "zstd",
        }
    }
}

fn le16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// The compressed kernel inside `bzimage`.
pub fn payload(bzimage: &[u8]) -> Result<&[u8], String> {
    if bzimage.len() < PAYLOAD_LENGTH + 4 {
        return Err(format!("{} bytes is too short for a bzImage header", bzimage.len()));
    }
    if le16(bzimage, BOOT_FLAG) != 0xaa55 || &bzimage[HEADER_MAGIC..HEADER_MAGIC + 4] != b"HdrS" {
        return Err("not a bzImage (no boot flag 0xAA55 and `HdrS` header)".to_string());
    }
    let version = le16(bzimage, PROTOCOL_VERSION);
    if version < PAYLOAD_PROTOCOL {
        return Err(format!(
            "boot protocol {}.{:02} predates the payload fields (2.08)",
            version >> 8,
            version & 0xff
        ));
    }
    let setup_sects = match bzimage[SETUP_SECTS] as usize {
        0 => DEFAULT_SETUP_SECTS,
        sectors => sectors,
    };
    let protected_mode = (setup_sects + 1) * SECTOR;
    let offset = le32(bzimage, PAYLOAD_OFFSET) as usize;
    let length = le32(bzimage, PAYLOAD_LENGTH) as usize;
    let start = protected_mode + offset;
    bzimage.get(start..start + length).filter(|payload| !payload.is_empty()).ok_or_else(|| {
        format!("the payload ({length} bytes at {start:#x}) lies outside the {}-byte file", bzimage.len())
    })
}

/// The ELF `vmlinux` inside `bzimage`, decompressed and checked against the
/// size Linux's build recorded.
pub fn extract_vmlinux(bzimage: &[u8]) -> Result<Vec<u8>, String> {
    let payload = payload(bzimage)?;
    let elf = match Compression::of(payload) {
        Some(Compression::Zstd) => unzstd(payload)?,
        Some(Compression::Lz4) => unlz4_legacy(payload)?,
        Some(other) => {
            return Err(format!(
                "the kernel is {}-compressed; only zstd and lz4 are supported",
                other.name()
            ));
        }
        None => {
            let magic: Vec<String> = payload.iter().take(6).map(|byte| format!("{byte:02x}")).collect();
            return Err(format!("the payload's compression is unknown (magic {})", magic.join(" ")));
        }
    };
    if !elf.starts_with(b"\x7fELF") {
        return Err("the payload did not decompress to an ELF file".to_string());
    }
    Ok(elf)
}

/// The size Linux's build appended to the compressed stream.
fn recorded_size(payload: &[u8]) -> Result<usize, String> {
    if payload.len() < 8 {
        return Err("the payload is truncated".to_string());
    }
    let recorded_size = le32(payload, payload.len() - 4) as usize;
    if recorded_size > MAX_VMLINUX {
        return Err(format!("the payload claims an implausible {recorded_size}-byte kernel"));
    }
    Ok(recorded_size)
}

fn check_size(decompressed: usize, recorded_size: usize) -> Result<(), String> {
    if decompressed == recorded_size {
        Ok(())
    } else {
        Err(format!("decompressed to {decompressed} bytes, but the bzImage records {recorded_size}"))
    }
}

fn unlz4_legacy(payload: &[u8]) -> Result<Vec<u8>, String> {
    let recorded_size = recorded_size(payload)?;
    let mut stream = &payload[LZ4_LEGACY_MAGIC.len()..payload.len() - 4];
    let mut elf = Vec::with_capacity(recorded_size);
    let mut block = vec![0u8; LZ4_LEGACY_BLOCK];
    while stream.len() >= 4 {
        let (size, rest) = stream.split_at(4);
        // Streams may be concatenated, each with its own magic.
        if size == LZ4_LEGACY_MAGIC {
            stream = rest;
            continue;
        }
        let size = le32(size, 0) as usize;
        let compressed = rest.get(..size).ok_or("an lz4 block runs past the payload")?;
        let produced = lz4_flex::block::decompress_into(compressed, &mut block)
            .map_err(|err| format!("lz4 decompression failed: {err}"))?;
        if elf.len() + produced > recorded_size {
            return Err(format!("the lz4 stream outgrows the {recorded_size} bytes the bzImage records"));
        }
        elf.extend_from_slice(&block[..produced]);
        stream = &rest[size..];
    }
    if !stream.is_empty() {
        return Err("the lz4 stream ends inside a block header".to_string());
    }
    check_size(elf.len(), recorded_size)?;
    Ok(elf)
}

fn unzstd(payload: &[u8]) -> Result<Vec<u8>, String> {
    use ruzstd::decoding::StreamingDecoder;
    let recorded_size = recorded_size(payload)?;
    let mut decoder = StreamingDecoder::new_with_max_window_size(payload, MAX_ZSTD_WINDOW)
        .map_err(|err| format!("bad zstd frame: {err}"))?;
    let mut elf = Vec::with_capacity(recorded_size);
    // One byte past the recorded size is enough to see a lie.
    (&mut decoder)
        .take(recorded_size as u64 + 1)
        .read_to_end(&mut elf)
        .map_err(|err| format!("zstd decompression failed: {err}"))?;
    check_size(elf.len(), recorded_size)?;
    let frame = &decoder.decoder;
    if let (Some(stored), Some(computed)) = (frame.get_checksum_from_data(), frame.get_calculated_checksum())
    {
        if stored != computed {
            return Err(format!("zstd checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"));
        }
    }
    Ok(elf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bzImage-shaped file: boot sector and `setup_sects` of setup, then
    /// `offset` bytes of protected-mode code before the payload.
    fn bzimage(setup_sects: u8, version: u16, offset: usize, payload: &[u8]) -> Vec<u8> {
        let sectors = if setup_sects == 0 { DEFAULT_SETUP_SECTS } else { setup_sects as usize };
        let mut image = vec![0u8; (sectors + 1) * SECTOR + offset];
        image[SETUP_SECTS] = setup_sects;
        image[BOOT_FLAG..BOOT_FLAG + 2].copy_from_slice(&0xaa55u16.to_le_bytes());
        image[HEADER_MAGIC..HEADER_MAGIC + 4].copy_from_slice(b"HdrS");
        image[PROTOCOL_VERSION..PROTOCOL_VERSION + 2].copy_from_slice(&version.to_le_bytes());
        image[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4].copy_from_slice(&(offset as u32).to_le_bytes());
        image[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        image.extend_from_slice(payload);
        image.extend_from_slice(b"trailing setup data and signature");
        image
    }

    /// What Linux's build makes of `elf`: a zstd frame and the size.
    fn linux_payload(elf: &[u8]) -> Vec<u8> {
        let mut payload = ruzstd::encoding::compress_to_vec(elf, ruzstd::encoding::CompressionLevel::Fastest);
        payload.extend_from_slice(&(elf.len() as u32).to_le_bytes());
        payload
    }

    /// What `lz4 -l` and Linux's build make of `elf`: legacy blocks and the size.
    fn linux_lz4_payload(elf: &[u8]) -> Vec<u8> {
        let mut payload = LZ4_LEGACY_MAGIC.to_vec();
        for chunk in elf.chunks(LZ4_LEGACY_BLOCK) {
            let block = lz4_flex::block::compress(chunk);
            payload.extend_from_slice(&(block.len() as u32).to_le_bytes());
            payload.extend_from_slice(&block);
        }
        payload.extend_from_slice(&(elf.len() as u32).to_le_bytes());
        payload
    }

    fn fake_elf() -> Vec<u8> {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.extend((0..20_000u32).map(|i| (i % 251) as u8));
        elf
    }

    #[test]
    fn finds_and_decompresses_the_payload() {
        let elf = fake_elf();
        let payload = linux_payload(&elf);
        for (setup_sects, offset) in [(39, 716), (0, 0), (1, 4096)] {
            let image = bzimage(setup_sects, 0x020f, offset, &payload);
            assert_eq!(super::payload(&image).unwrap(), &payload[..]);
            assert_eq!(extract_vmlinux(&image).unwrap(), elf);
        }
    }

    #[test]
    fn lz4_legacy_blocks_are_joined() {
        // Over one 8 MiB block, so the stream has two.
        let mut elf = fake_elf();
        elf.extend((0..LZ4_LEGACY_BLOCK as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
        let payload = linux_lz4_payload(&elf);
        assert_eq!(extract_vmlinux(&bzimage(39, 0x020f, 716, &payload)).unwrap(), elf);

        let mut truncated = payload.clone();
        truncated.drain(payload.len() - 100..payload.len() - 4);
        let error = extract_vmlinux(&bzimage(39, 0x020f, 0, &truncated)).unwrap_err();
        assert!(error.contains("runs past"), "{error}");
    }

    #[test]
    fn a_wrong_recorded_size_is_caught() {
        let elf = fake_elf();
        for mut payload in [linux_payload(&elf), linux_lz4_payload(&elf)] {
            let at = payload.len() - 4;
            payload[at..].copy_from_slice(&(elf.len() as u32 - 1).to_le_bytes());
            let error = extract_vmlinux(&bzimage(39, 0x020f, 716, &payload)).unwrap_err();
            assert!(error.contains("records"), "{error}");
        }
    }

    #[test]
    fn other_compressions_and_non_elf_payloads_are_named() {
        let gzip = bzimage(39, 0x020f, 0, &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        assert_eq!(
            extract_vmlinux(&gzip).unwrap_err(),
            "the kernel is gzip-compressed; only zstd and lz4 are supported"
        );
        let xz = bzimage(39, 0x020f, 0, &[0xfd, b'7', b'z', b'X', b'Z', 0, 1]);
        assert!(extract_vmlinux(&xz).unwrap_err().contains("xz-compressed"));
        let unknown = bzimage(39, 0x020f, 0, &[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            extract_vmlinux(&unknown).unwrap_err(),
            "the payload's compression is unknown (magic 01 02 03 04 05 06)"
        );
        let not_elf = bzimage(39, 0x020f, 0, &linux_payload(b"#!/bin/sh\necho not a kernel\n"));
        assert_eq!(extract_vmlinux(&not_elf).unwrap_err(), "the payload did not decompress to an ELF file");
    }

    #[test]
    fn bad_headers_are_refused() {
        let payload = linux_payload(&fake_elf());
        assert!(payload_error(&[0u8; 100]).contains("too short"));
        let lz4_lie = bzimage(39, 0x020f, 0, &linux_lz4_payload(&fake_elf())[..40]);
        assert!(extract_vmlinux(&lz4_lie).is_err());
        let mut no_magic = bzimage(39, 0x020f, 0, &payload);
        no_magic[HEADER_MAGIC] = b'X';
        assert!(payload_error(&no_magic).starts_with("not a bzImage"));
        assert!(payload_error(&bzimage(39, 0x0206, 0, &payload)).contains("predates"));
        let mut beyond = bzimage(39, 0x020f, 0, &payload);
        beyond[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(payload_error(&beyond).contains("outside"));
        let garbage_frame = bzimage(39, 0x020f, 0, &[0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff, 9, 9]);
        assert!(extract_vmlinux(&garbage_frame).is_err());
    }

    fn payload_error(image: &[u8]) -> String {
        payload(image).unwrap_err()
    }
}
