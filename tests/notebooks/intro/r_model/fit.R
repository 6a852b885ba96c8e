# fit.R: a linear model of tree volume on girth, written to --out.
args <- commandArgs(trailingOnly = TRUE)
data_dir <- args[which(args == "--data") + 1]
out_dir <- args[which(args == "--out") + 1]
trees <- read.csv(file.path(data_dir, "trees.csv"))
model <- lm(volume ~ girth, data = trees)
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
writeLines(capture.output(print(coef(model))), file.path(out_dir, "coefficients.txt"))
