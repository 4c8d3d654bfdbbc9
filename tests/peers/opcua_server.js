// A small OPC UA server on node-opcua, an implementation independent of the Python client under test.
//
// Usage: node opcua_server.js --port PORT [--pki DIR]
// (node-opcua is found through NODE_PATH; tests/opcua_peers.py installs it into a cache folder.)
//
// Address space, namespace 1 (the server's own):
//   ns=1;s=Press1.OilTemperature   Double   42.5
//   ns=1;i=1001                    Int32    7        (StrokeCount, a numeric node id)
//   ns=1;s=Press1.Running          Boolean  true
//   ns=1;s=Press1.Program          String   "P-100"
//   ns=1;s=Press1.Speed            Float    1.5
//   ns=1;s=Press1.Sensor           Double   status BadSensorFailure
//   ns=1;s=Press1.Level            Double   12.5, status UncertainLastUsableValue
//   ns=1;s=Press1.Pressure         Double   AnalogItem, EURange 0..200, value 100
//   ns=1;s=Press1.Vector           Double[] [1, 2, 3]
//
// Once listening it prints one line `READY <endpoint>`. Then it reads JSON commands, one a line, on
// stdin and answers each with `ACK <id>` (or `ERR <id> <message>`):
//   {"id": 1, "cmd": "set", "name": "OilTemperature", "value": 43.0, "status": "Good"}
// `name` is the part after "Press1." (StrokeCount for the numeric node); `status` is a StatusCodes name.
// It exits when stdin closes or on SIGTERM.
"use strict";

const path = require("path");
const os = require("os");
const readline = require("readline");
const {
    OPCUAServer,
    OPCUACertificateManager,
    Variant,
    DataType,
    VariantArrayType,
    StatusCodes,
    MessageSecurityMode,
    SecurityPolicy,
    standardUnits,
} = require("node-opcua");

function argument(name, fallback) {
    const i = process.argv.indexOf(name);
    return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = parseInt(argument("--port", "4840"), 10);
const pki = argument("--pki", path.join(os.tmpdir(), "twinedge-node-opcua-pki"));

const variables = {};

function variant(dataType, value) {
    if (Array.isArray(value)) {
        return new Variant({ dataType, arrayType: VariantArrayType.Array, value });
    }
    return new Variant({ dataType, value });
}

async function main() {
    const certificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pki, "server"),
        automaticallyAcceptUnknownCertificate: true,
    });
    const userCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pki, "user"),
        automaticallyAcceptUnknownCertificate: true,
    });
    const server = new OPCUAServer({
        port,
        hostname: "127.0.0.1",
        resourcePath: "/twinedge/test",
        securityModes: [MessageSecurityMode.None],
        securityPolicies: [SecurityPolicy.None],
        allowAnonymous: true,
        serverCertificateManager: certificateManager,
        userCertificateManager,
        disableDiscovery: true,
        buildInfo: { productName: "TwinEdge test peer", buildNumber: "1" },
    });
    await server.initialize();

    const addressSpace = server.engine.addressSpace;
    const ns = addressSpace.getOwnNamespace();
    const press = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "Press1" });

    function add(name, nodeId, dataType, value, status) {
        const v = ns.addVariable({
            componentOf: press,
            nodeId,
            browseName: name,
            dataType: DataType[dataType],
            valueRank: Array.isArray(value) ? 1 : -1,
            minimumSamplingInterval: 10,
        });
        v.setValueFromSource(variant(DataType[dataType], value), status || StatusCodes.Good, new Date());
        variables[name] = { node: v, dataType: DataType[dataType] };
    }

    add("OilTemperature", "s=Press1.OilTemperature", "Double", 42.5);
    add("StrokeCount", "i=1001", "Int32", 7);
    add("Running", "s=Press1.Running", "Boolean", true);
    add("Program", "s=Press1.Program", "String", "P-100");
    add("Speed", "s=Press1.Speed", "Float", 1.5);
    add("Sensor", "s=Press1.Sensor", "Double", 0, StatusCodes.BadSensorFailure);
    add("Level", "s=Press1.Level", "Double", 12.5, StatusCodes.UncertainLastUsableValue);
    add("Vector", "s=Press1.Vector", "Double", [1, 2, 3]);

    const pressure = ns.addAnalogDataItem({
        componentOf: press,
        nodeId: "s=Press1.Pressure",
        browseName: "Pressure",
        dataType: "Double",
        engineeringUnitsRange: { low: 0, high: 200 },
        engineeringUnits: standardUnits.bar,
        minimumSamplingInterval: 10,
        value: new Variant({ dataType: DataType.Double, value: 100 }),
    });
    pressure.setValueFromSource(variant(DataType.Double, 100), StatusCodes.Good, new Date());
    variables.Pressure = { node: pressure, dataType: DataType.Double };

    await server.start();
    process.stdout.write(`READY opc.tcp://127.0.0.1:${port}/twinedge/test\n`);

    const stop = async () => {
        try {
            await server.shutdown(0);
        } finally {
            process.exit(0);
        }
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);

    const lines = readline.createInterface({ input: process.stdin });
    lines.on("line", (line) => {
        let id = "?";
        try {
            const command = JSON.parse(line);
            id = command.id;
            if (command.cmd !== "set") {
                throw new Error(`unknown command ${command.cmd}`);
            }
            const entry = variables[command.name];
            if (!entry) {
                throw new Error(`unknown variable ${command.name}`);
            }
            const status = StatusCodes[command.status || "Good"];
            if (!status) {
                throw new Error(`unknown status ${command.status}`);
            }
            entry.node.setValueFromSource(variant(entry.dataType, command.value), status, new Date());
            process.stdout.write(`ACK ${id}\n`);
        } catch (err) {
            process.stdout.write(`ERR ${id} ${String(err && err.message ? err.message : err).replace(/\n/g, " ")}\n`);
        }
    });
    lines.on("close", stop);
}

main().catch((err) => {
    process.stderr.write(`opcua_server.js failed: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
});
