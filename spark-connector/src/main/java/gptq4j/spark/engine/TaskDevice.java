package gptq4j.spark.engine;

import gptq4j.spark.GptqSettings;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;

/** Which device a task's engine should run on. */
public final class TaskDevice {

    /** Spark's resource name for GPUs. */
    public static final String GPU = "gpu";

    private TaskDevice() { }

    /** The first GPU address Spark assigned to the running task, or null (no task, or no GPU resource). */
    public static String assignedGpu(TaskContext task) {
        if (task == null) return null;
        ResourceInformation gpu = task.resourcesJMap().get(GPU);
        if (gpu == null || gpu.addresses().length == 0) return null;
        return gpu.addresses()[0];
    }

    /** {@code cuda:<address>} for the task's GPU, else the configured device. */
    public static String requested(TaskContext task, GptqSettings settings) {
        String gpu = assignedGpu(task);
        return gpu != null ? "cuda:" + gpu : settings.device();
    }
}
