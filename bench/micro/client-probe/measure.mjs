// node-rdkafka producing (acks all) and consuming the records kafka-clients.ts measures with kafkajs: CPU per record
// of the whole process, librdkafka's threads included. Run through run.sh, which builds node-rdkafka.
import { createRequire } from 'node:module';
const dist = new URL('../../../dist/bench/', import.meta.url);
const { sampleOutputs } = await import(new URL('micro/sample-outputs.js', dist).href);
const { startMockCluster } = await import(new URL('targets/kafka-cluster.js', dist).href);
const require = createRequire(`${process.env.RDKAFKA_DIR ?? '/tmp/verdict-rdkafka-probe'}/`);
const Kafka = require('node-rdkafka');
const RECORDS = 50_000, PARTITIONS = 16;
const cpu = (c0) => { const c = process.cpuUsage(c0); return c.user + c.system; };
const shapes = await sampleOutputs(1000);
const cluster = await startMockCluster();
const brokers = cluster.brokers.join(',');
const out = {};
for (const [name, sample] of Object.entries(shapes)) {
  const topic = `rdk-${name}`;
  await cluster.createTopic(topic, PARTITIONS);
  const producer = new Kafka.Producer({ 'metadata.broker.list': brokers, 'dr_cb': true, 'acks': -1, 'linger.ms': 5, 'queue.buffering.max.messages': 200000 });
  await new Promise((res, rej) => { producer.connect({}, (e) => e ? rej(e) : res()); });
  producer.setPollInterval(10);
  let delivered = 0; let done;
  const all = new Promise((r) => { done = r; });
  producer.on('delivery-report', (err) => { if (err) throw err; if (++delivered === RECORDS) done(); });
  const c0 = process.cpuUsage();
  for (let i = 0; i < RECORDS; i++) {
    const m = sample[i % sample.length];
    producer.produce(topic, null, m.value, m.key, Date.now(), undefined, Object.entries(m.headers).map(([k, v]) => ({ [k]: v })));
  }
  await all;
  const produceUs = cpu(c0) / RECORDS;
  await new Promise((r) => producer.disconnect(r));
  const consumer = new Kafka.KafkaConsumer({ 'metadata.broker.list': brokers, 'group.id': `rdk-${name}`, 'enable.auto.commit': false }, { 'auto.offset.reset': 'earliest' });
  await new Promise((res, rej) => consumer.connect({}, (e) => e ? rej(e) : res()));
  consumer.subscribe([topic]);
  let seen = 0; let c1;
  await new Promise((resolve) => {
    const loop = () => consumer.consume(1000, (err, msgs) => {
      if (err) throw err;
      if (msgs.length > 0) c1 ??= process.cpuUsage();
      for (const m of msgs) if (m.value && m.key) seen++;
      if (seen >= RECORDS) resolve(); else setImmediate(loop);
    });
    loop();
  });
  const consumeUs = cpu(c1) / RECORDS;
  await new Promise((r) => consumer.disconnect(r));
  out[name] = { produceCpuUsPerRecord: +produceUs.toFixed(2), consumeCpuUsPerRecord: +consumeUs.toFixed(2) };
}
await cluster.stop();
console.log(JSON.stringify({ client: 'node-rdkafka 3.6.1 on librdkafka ' + Kafka.librdkafkaVersion, records: RECORDS, out }, null, 2));
process.exit(0);
