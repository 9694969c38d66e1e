#!/usr/bin/env bash
# Example: the batch job on a Spark cluster with NVIDIA GPUs, submitted with a Spark distribution's spark-submit
# (Spark 4.0.x, Scala 2.13, JDK 17+ on every node):
#
#   SPARK_HOME=/opt/spark bin/spark-submit-gpu.sh --master spark://head:7077 \
#       --model /mnt/models/Mixtral-8x7B-v0.1-GPTQ --input hdfs:///data/prompts.parquet \
#       --output hdfs:///data/generations --format parquet [--max-new-tokens 256] [other BatchGenerate flags]
#
# Every argument goes to gptq4j.examples.BatchGenerate; --master also goes to spark-submit. GPTQ4J_CLASS picks
# another example (SqlGenerate, Summarise), GPTQ4J_SUBMIT_OPTS adds spark-submit options (they win over the ones
# below), GPTQ4J_APP_JAR replaces the application jar, GPTQ4J_DRY_RUN=1 prints the command instead of running it, SPARK_SUBMIT replaces $SPARK_HOME/bin/spark-submit.
#
# The application jar is examples/target/gptq4j-examples-VERSION-spark.jar: the examples, the connector, the engine
# and JCuda (with its Linux natives), without Spark, Scala, Arrow or Jackson, which the Spark distribution provides.
# Nothing goes on --jars or --packages. (With the thin jars instead: --jars gptq4j-engine-VERSION.jar,
# gptq4j-spark-connector-VERSION.jar,jcuda-12.6.0.jar,jcuda-natives-12.6.0-linux-x86_64.jar and the thin examples jar.)
#
# GPUs: one per executor, shared by its task slots. The connector keeps one engine per executor JVM and GPU, and all
# concurrent tasks of the executor feed that engine's continuous batch, so spark.task.resource.gpu.amount is a
# fraction (1/4: four tasks per GPU). Each task's engine is pinned to the GPU address Spark assigned to it
# (cuda:<address>); spark.gptq4j.device only applies to tasks without a GPU. device.fallback=none makes an executor
# that cannot use its GPU fail loudly instead of running on its CPU.
# Discovery: YARN and Kubernetes executors run the discovery script below (it must exist at that path on every node,
# or in the image); on a standalone cluster the workers discover GPUs, so add to each worker's spark-defaults.conf:
#     spark.worker.resource.gpu.amount          <GPUs on the node>
#     spark.worker.resource.gpu.discoveryScript /path/to/gptq4j/examples/conf/gpu-discovery.sh
# Memory: the checkpoint is memory-mapped on the host while it is copied to the GPU; on YARN/Kubernetes give the
# executor memory overhead room for it (4-bit Mixtral-8x7B: about 24 GB of safetensors).
# JVM: the engine needs the Vector API module on executors and driver (--add-modules=jdk.incubator.vector); Arrow
# and Spark need java.base opened to them (Spark's own launcher adds these --add-opens; they are repeated here so
# executors started by other launchers get them too).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

master=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [[ "${args[$i]}" == "--master" && $((i + 1)) -lt ${#args[@]} ]]; then master="${args[$((i + 1))]}"; fi
done
if [[ -z "$master" ]]; then
  echo "usage: bin/spark-submit-gpu.sh --master URL --model DIR --input FILE --output DIR [BatchGenerate flags]" >&2
  exit 2
fi

jar="${GPTQ4J_APP_JAR:-$(ls "$here"/examples/target/gptq4j-examples-*-spark.jar 2>/dev/null | head -n1 || true)}"
if [[ -z "$jar" ]]; then
  echo "spark-submit-gpu: building the application jar (mvn package -pl examples -am)..." >&2
  (cd "$here" && mvn -q -B -DskipTests -pl examples -am package) >&2
  jar=$(ls "$here"/examples/target/gptq4j-examples-*-spark.jar | head -n1)
fi
submit="${SPARK_SUBMIT:-${SPARK_HOME:+$SPARK_HOME/bin/}spark-submit}"
discovery="${GPTQ4J_GPU_DISCOVERY:-$here/examples/conf/gpu-discovery.sh}"
jvm="--add-modules=jdk.incubator.vector -XX:+IgnoreUnrecognizedVMOptions --add-opens=java.base/java.lang=ALL-UNNAMED"
jvm+=" --add-opens=java.base/java.lang.invoke=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED"
jvm+=" --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED"
jvm+=" --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED"
jvm+=" --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED"
jvm+=" --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.cs=ALL-UNNAMED"
jvm+=" --add-opens=java.base/sun.security.action=ALL-UNNAMED --add-opens=java.base/sun.util.calendar=ALL-UNNAMED"
jvm+=" -Djdk.reflect.useDirectMethodHandle=false -Dio.netty.tryReflectionSetAccessible=true"

cmd=("$submit" --master "$master" --class "gptq4j.examples.${GPTQ4J_CLASS:-BatchGenerate}" --name "gptq4j batch generation"
  # GPUs: one per executor, four task slots sharing it (one engine per GPU, one continuous batch)
  --conf spark.executor.cores=4
  --conf spark.executor.resource.gpu.amount=1
  --conf spark.task.resource.gpu.amount=0.25
  --conf "spark.executor.resource.gpu.discoveryScript=$discovery"
  --conf spark.executor.memory=16g
  --conf spark.executor.memoryOverhead=32g
  # the engine's JVM options on executors and on the driver
  --conf "spark.executor.extraJavaOptions=$jvm"
  --driver-java-options "$jvm"
  # close engines (and free GPU memory) when an executor stops
  --conf spark.plugins=gptq4j.spark.engine.GptqPlugin
  # gptq4j: GPU only, wide continuous batches, enough rows queued per task to keep them full
  --conf spark.gptq4j.device=cuda
  --conf spark.gptq4j.device.fallback=none
  --conf spark.gptq4j.maxBatchSize=128
  --conf spark.gptq4j.maxTokensPerStep=2048
  --conf spark.gptq4j.kvCacheBytes=8589934592
  --conf spark.gptq4j.rowsPerBatch=128
  --conf spark.gptq4j.batchesInFlight=2
  --conf spark.executor.heartbeatInterval=5s
  # rows are expensive: split input files finely so every task slot has work
  --conf spark.sql.files.maxPartitionBytes=8m
  --conf spark.sql.files.openCostInBytes=1024)
# shellcheck disable=SC2206
extra=(${GPTQ4J_SUBMIT_OPTS:-})
cmd+=("${extra[@]}" "$jar" "$@")

if [[ "${GPTQ4J_DRY_RUN:-0}" == 1 ]]; then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi
exec "${cmd[@]}"
