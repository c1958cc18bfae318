//! The 16550 UART, as QEMU emulates it at COM1 (0x3f8).
//!
//! This is the console of the native platform and of the hypervisor, and the
//! last-resort console of a PVH guest under QEMU's Xen emulation.

use crate::PortIo;

/// The legacy base port of COM1.
pub const COM1: u16 = 0x3f8;

// Register offsets from the base port (DLAB = 0 unless noted).
const DATA: u16 = 0;
const INTERRUPT_ENABLE: u16 = 1;
const FIFO_CONTROL: u16 = 2;
const LINE_CONTROL: u16 = 3;
const MODEM_CONTROL: u16 = 4;
const LINE_STATUS: u16 = 5;

const LINE_STATUS_DATA_READY: u8 = 1 << 0;
const LINE_STATUS_TX_EMPTY: u8 = 1 << 5;
const LINE_CONTROL_DLAB: u8 = 1 << 7;
const LINE_CONTROL_8N1: u8 = 0x03;

/// A polled 16550. Output never blocks forever: if the transmitter never
/// reports empty (no UART present), the byte is dropped after a bounded wait.
pub struct Uart16550<P: PortIo> {
    base: u16,
    io: P,
}

impl<P: PortIo> Uart16550<P> {
    /// Bounded spin on the transmit-empty bit.
    const TX_SPIN_LIMIT: u32 = 100_000;

    pub const fn new(base: u16, io: P) -> Self {
        Self { base, io }
    }

    /// Programs 115200 8N1 with FIFOs on and interrupts off.
    pub fn init(&mut self) {
        self.io.write8(self.base + INTERRUPT_ENABLE, 0);
        self.io.write8(self.base + LINE_CONTROL, LINE_CONTROL_DLAB);
        // Divisor 1 = 115200 baud; with DLAB set, offsets 0 and 1 are the divisor.
        self.io.write8(self.base + DATA, 1);
        self.io.write8(self.base + INTERRUPT_ENABLE, 0);
        self.io.write8(self.base + LINE_CONTROL, LINE_CONTROL_8N1);
        self.io.write8(self.base + FIFO_CONTROL, 0xc7);
        // DTR | RTS | OUT2.
        self.io.write8(self.base + MODEM_CONTROL, 0x0b);
    }

    pub fn write_byte(&mut self, byte: u8) {
        for _ in 0..Self::TX_SPIN_LIMIT {
            if self.io.read8(self.base + LINE_STATUS) & LINE_STATUS_TX_EMPTY != 0 {
                break;
            }
        }
        self.io.write8(self.base + DATA, byte);
    }

    /// Writes text, turning `\n` into `\r\n` as a terminal expects.
    pub fn write_str(&mut self, text: &str) {
        for byte in text.bytes() {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
    }

    /// A received byte, if one is waiting.
    pub fn try_read_byte(&mut self) -> Option<u8> {
        if self.io.read8(self.base + LINE_STATUS) & LINE_STATUS_DATA_READY != 0 {
            Some(self.io.read8(self.base + DATA))
        } else {
            None
        }
    }
}

impl<P: PortIo> core::fmt::Write for Uart16550<P> {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        Uart16550::write_str(self, text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A model of the UART's registers: transmit is always ready, and one
    /// byte may wait in the receiver.
    #[derive(Default)]
    struct FakeUart {
        writes: Vec<(u16, u8)>,
        rx: Option<u8>,
    }

    impl PortIo for &mut FakeUart {
        fn read8(&mut self, port: u16) -> u8 {
            match port - COM1 {
                LINE_STATUS => LINE_STATUS_TX_EMPTY | if self.rx.is_some() { 1 } else { 0 },
                DATA => self.rx.take().unwrap_or(0),
                _ => 0,
            }
        }
        fn write8(&mut self, port: u16, value: u8) {
            self.writes.push((port, value));
        }
    }

    #[test]
    fn newline_becomes_crlf() {
        let mut fake = FakeUart::default();
        Uart16550::new(COM1, &mut fake).write_str("a\nb");
        let data: Vec<u8> = fake.writes.iter().filter(|(p, _)| *p == COM1).map(|(_, v)| *v).collect();
        assert_eq!(data, b"a\r\nb");
    }

    #[test]
    fn init_sets_8n1_with_divisor_one() {
        let mut fake = FakeUart::default();
        Uart16550::new(COM1, &mut fake).init();
        assert!(fake.writes.contains(&(COM1 + LINE_CONTROL, LINE_CONTROL_8N1)));
        assert!(fake.writes.contains(&(COM1 + DATA, 1)));
    }

    #[test]
    fn receive_reports_only_waiting_bytes() {
        let mut fake = FakeUart { rx: Some(b'x'), ..Default::default() };
        let mut uart = Uart16550::new(COM1, &mut fake);
        assert_eq!(uart.try_read_byte(), Some(b'x'));
        assert_eq!(uart.try_read_byte(), None);
    }
}
