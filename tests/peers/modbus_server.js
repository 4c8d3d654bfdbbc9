// An independent Modbus TCP server for the connector's interoperability test: npm `modbus-serial`'s
// ServerTCP, with register contents built by Node's own Buffer methods (no Python involved).
//
// Usage: node modbus_server.js PORT   (NODE_PATH must reach modbus-serial)
// Prints "listening PORT" once it accepts connections; SIGTERM stops it.
//
// Holding registers (unit ids: any):
//   0, 2, 4, 6     float32 123.456 as ABCD, DCBA, BADC, CDAB
//   8, 10, 12, 14  float32 -0.15625 as ABCD, DCBA, BADC, CDAB
//   16             int32 -123456789 (ABCD)
//   18             float64 -9876.54321 (big-endian words and bytes)
//   22             float64 6.02214076e23 (DCBA...: little-endian throughout)
//   26             string "NodeJS" in 4 registers, NUL-padded
//   30             uint16 4242
//   31             end: reads past it answer exception 2 (illegal data address)
// Input registers 0..9: 1000 + address. Coils: address % 3 == 0. Discrete inputs: address is odd.
"use strict";

const ModbusRTU = require("modbus-serial");

const port = parseInt(process.argv[2], 10);
if (!(port > 0)) {
    console.error("usage: node modbus_server.js PORT");
    process.exit(2);
}

const ORDERS = { ABCD: [0, 1, 2, 3], DCBA: [3, 2, 1, 0], BADC: [1, 0, 3, 2], CDAB: [2, 3, 0, 1] };

function words(buf) {
    const out = [];
    for (let i = 0; i < buf.length; i += 2) out.push(buf.readUInt16BE(i));
    return out;
}

function float32(value, layout) {
    const be = Buffer.alloc(4);
    be.writeFloatBE(value, 0);
    return words(Buffer.from(ORDERS[layout].map((i) => be[i])));
}

const holding = new Array(31).fill(0);
function put(address, regs) {
    regs.forEach((r, i) => { holding[address + i] = r; });
}

["ABCD", "DCBA", "BADC", "CDAB"].forEach((layout, i) => {
    put(2 * i, float32(123.456, layout));
    put(8 + 2 * i, float32(-0.15625, layout));
});
const i32 = Buffer.alloc(4);
i32.writeInt32BE(-123456789, 0);
put(16, words(i32));
const f64be = Buffer.alloc(8);
f64be.writeDoubleBE(-9876.54321, 0);
put(18, words(f64be));
const f64le = Buffer.alloc(8);
f64le.writeDoubleLE(6.02214076e23, 0);
put(22, words(f64le));
const text = Buffer.alloc(8);
text.write("NodeJS", 0, "ascii");
put(26, words(text));
holding[30] = 4242;

function illegal() {
    const err = new Error("Illegal data address");
    err.modbusErrorCode = 0x02;
    return err;
}

const vector = {
    getHoldingRegister(addr) {
        if (addr >= holding.length) throw illegal();
        return holding[addr];
    },
    getMultipleHoldingRegisters(addr, length) {
        if (addr + length > holding.length) throw illegal();
        return holding.slice(addr, addr + length);
    },
    getInputRegister(addr) {
        if (addr >= 10) throw illegal();
        return 1000 + addr;
    },
    getMultipleInputRegisters(addr, length) {
        if (addr + length > 10) throw illegal();
        return Array.from({ length }, (_, i) => 1000 + addr + i);
    },
    getCoil(addr) {
        return addr % 3 === 0;
    },
    getDiscreteInput(addr) {
        return addr % 2 === 1;
    },
};

const server = new ModbusRTU.ServerTCP(vector, { host: "127.0.0.1", port, debug: false, unitID: 255 });
server.on("initialized", () => console.log(`listening ${port}`));
server.on("serverError", (err) => {
    console.error(`server error: ${err}`);
    process.exit(1);
});
server.on("socketError", () => {});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
